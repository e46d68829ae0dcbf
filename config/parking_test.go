package config

import "testing"

func TestParkingValidate(t *testing.T) {
	good := Parking{Bucket: "ops-parking", Region: "eu-central-1", Prefix: "hitship/"}
	tests := []struct {
		name    string
		edit    func(p *Parking)
		wantKey string // "" means valid
	}{
		{name: "off when no bucket", edit: func(p *Parking) { *p = Parking{Prefix: "hitship/", Region: "bad region ignored"} }},
		{name: "own identity", edit: func(*Parking) {}},
		{name: "static key", edit: func(p *Parking) {
			p.Credentials.AccessKeyID, p.Credentials.SecretAccessKeyEnv = "AKIAPARKING00001", "PARK_SECRET"
		}},
		{name: "bad bucket", edit: func(p *Parking) { p.Bucket = "Bad_Bucket" }, wantKey: "parking.bucket"},
		{name: "no region", edit: func(p *Parking) { p.Region = "" }, wantKey: "parking.region"},
		{name: "bad endpoint", edit: func(p *Parking) { p.Endpoint = "ftp://x" }, wantKey: "parking.endpoint"},
		{name: "absolute prefix", edit: func(p *Parking) { p.Prefix = "/hitship/" }, wantKey: "parking.prefix"},
		{name: "role not supported", edit: func(p *Parking) { p.Credentials.RoleARN = "arn:aws:iam::123456789012:role/x" },
			wantKey: "parking.credentials.role_arn"},
		{name: "key without secret", edit: func(p *Parking) { p.Credentials.AccessKeyID = "AKIAPARKING00001" },
			wantKey: "parking.credentials.secret_access_key_env"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Parking = good
			tc.edit(&c.Parking)
			ps := c.Validate(env(map[string]string{"PARK_SECRET": "s3cr3t"}))
			var mine []Problem
			for _, p := range ps {
				if len(p.Key) >= 7 && p.Key[:7] == "parking" {
					mine = append(mine, p)
				}
			}
			if tc.wantKey == "" {
				if len(mine) > 0 {
					t.Fatalf("problems %v; want none", mine)
				}
				if c.Parking.Credentials.AccessKeyID != "" && c.Parking.Credentials.SecretAccessKey() != "s3cr3t" {
					t.Errorf("secret not read")
				}
				return
			}
			if _, ok := findProblem(mine, tc.wantKey); !ok {
				t.Errorf("problems %v; want one at %s", mine, tc.wantKey)
			}
		})
	}
}

func TestParkingDefaultOff(t *testing.T) {
	c := Default()
	if c.Parking.Enabled() || c.Parking.Prefix != "hitship/" {
		t.Errorf("default parking = %+v; want off with prefix hitship/", c.Parking)
	}
}
