package s3

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOnboardingPolicies: the permission policy grants s3:PutObject on the
// bucket's objects and nothing else; the trust policy trusts hitship's
// account with the client's external ID; both are valid JSON to paste.
func TestOnboardingPolicies(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	o, err := NewOnboarding("111122223333", secret, 7, "acme-hits")
	if err != nil {
		t.Fatal(err)
	}
	if o.ExternalID != ExternalID(secret, 7) || o.AccountID != "111122223333" {
		t.Fatalf("onboarding %+v", o)
	}
	var perm struct {
		Statement []struct{ Effect, Action, Resource string }
	}
	if err := json.Unmarshal(o.PermissionPolicy, &perm); err != nil || len(perm.Statement) != 1 {
		t.Fatalf("permission policy %s: %v", o.PermissionPolicy, err)
	}
	if s := perm.Statement[0]; s.Effect != "Allow" || s.Action != "s3:PutObject" || s.Resource != "arn:aws:s3:::acme-hits/*" {
		t.Fatalf("permission statement %+v", s)
	}
	var trust struct {
		Statement []struct {
			Principal struct{ AWS string }
			Action    string
			Condition struct {
				StringEquals map[string]string
			}
		}
	}
	if err := json.Unmarshal(o.TrustPolicy, &trust); err != nil || len(trust.Statement) != 1 {
		t.Fatalf("trust policy %s: %v", o.TrustPolicy, err)
	}
	if s := trust.Statement[0]; s.Principal.AWS != "arn:aws:iam::111122223333:root" || s.Action != "sts:AssumeRole" ||
		s.Condition.StringEquals["sts:ExternalId"] != o.ExternalID {
		t.Fatalf("trust statement %+v", s)
	}
	if o, _ := NewOnboarding("111122223333", secret, 7, ""); !strings.Contains(string(o.PermissionPolicy), BucketPlaceholder) {
		t.Fatalf("no bucket: %s", o.PermissionPolicy)
	}
	if _, err := NewOnboarding("", secret, 7, "b"); err == nil || !strings.Contains(err.Error(), "external_id.account_id") {
		t.Fatalf("without an account: %v", err)
	}
}
