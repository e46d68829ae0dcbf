package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"hitship/admin"
	"hitship/config"
)

const integrationsUsage = `usage: hitship integrations [--url URL] [--json] <command> ...

Talks to a replica's admin API: --url (or HITSHIP_ADMIN_URL, default
http://127.0.0.1:9464), the token in HITSHIP_ADMIN_TOKEN (or --token-file).

commands:
  list                              every integration, its source and state
  show NAME                         one integration
  create -f FILE [--save-anyway]    create the integration FILE describes (tested first)
  apply -f FILE [--save-anyway]     create it, or replace the one of its name
  delete NAME                       delete an integration created through the API
  enable NAME                       deliver again
  disable [--reason R] NAME         skip its records
  test NAME | test -f FILE          the test write, of a saved integration or of FILE
  onboarding --client ID [--bucket B]
                                    the account, external ID and policies a role needs
  onboarding --client ID --source-name S [--source-version V]
                                    what CreateCustomLogSource takes for a Security Lake source

FILE is YAML (or JSON) with the config file's integration fields: name,
client_id, region, bucket, prefix, format, compression, events, endpoint,
path_style, manifest, type and security_lake, and credentials with role_arn, or access_key_id and
secret_access_key_env (an environment variable of this command's) or
secret_access_key_file. The secret is sent to the API, which stores it
sealed, and never printed.
`

// integrationFile is what -f FILE holds: the config file's integration.
type integrationFile struct {
	Name        string   `yaml:"name" json:"name"`
	ClientID    int64    `yaml:"client_id" json:"client_id"`
	Region      string   `yaml:"region" json:"region"`
	Bucket      string   `yaml:"bucket" json:"bucket"`
	Prefix      string   `yaml:"prefix" json:"prefix"`
	Format      string   `yaml:"format" json:"format"`
	Compression string   `yaml:"compression" json:"compression"`
	Events      []string `yaml:"events" json:"events"`
	Endpoint    string   `yaml:"endpoint" json:"endpoint"`
	PathStyle   bool     `yaml:"path_style" json:"path_style"`
	Manifest    bool     `yaml:"manifest" json:"manifest"`
	Type        string   `yaml:"type" json:"type"`
	// SecurityLake is the config file's security_lake block (type
	// security_lake).
	SecurityLake *config.SecurityLake `yaml:"security_lake" json:"security_lake"`
	Credentials  struct {
		RoleARN             string `yaml:"role_arn" json:"role_arn"`
		AccessKeyID         string `yaml:"access_key_id" json:"access_key_id"`
		SecretAccessKeyEnv  string `yaml:"secret_access_key_env" json:"secret_access_key_env"`
		SecretAccessKeyFile string `yaml:"secret_access_key_file" json:"secret_access_key_file"`
	} `yaml:"credentials" json:"credentials"`
}

// readIntegrationFile reads FILE into an API request, the secret included.
func readIntegrationFile(path string) (admin.Request, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return admin.Request{}, err
	}
	var f integrationFile
	dec := yaml.NewDecoder(bytes.NewReader(data)) // YAML reads JSON too
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return admin.Request{}, fmt.Errorf("%s: %w (the fields are the config file's integration fields)", path, err)
	}
	c := f.Credentials
	req := admin.Request{Name: f.Name, ClientID: f.ClientID, Region: f.Region, Bucket: f.Bucket, Prefix: f.Prefix, Format: f.Format,
		Compression: f.Compression, Events: f.Events, Endpoint: f.Endpoint, PathStyle: f.PathStyle, Manifest: f.Manifest,
		Credentials: admin.Credentials{RoleARN: c.RoleARN, AccessKeyID: c.AccessKeyID},
		Type:        f.Type, SecurityLake: f.SecurityLake}
	switch {
	case c.SecretAccessKeyEnv != "" && c.SecretAccessKeyFile != "":
		return admin.Request{}, fmt.Errorf("%s: credentials: keep only one of secret_access_key_env and secret_access_key_file", path)
	case c.SecretAccessKeyEnv != "":
		v, ok := os.LookupEnv(c.SecretAccessKeyEnv)
		if !ok || v == "" {
			return admin.Request{}, fmt.Errorf("%s: credentials.secret_access_key_env: export %s (the access key's secret) in this command's environment", path, c.SecretAccessKeyEnv)
		}
		req.Credentials.SecretAccessKey = v
	case c.SecretAccessKeyFile != "":
		b, err := os.ReadFile(c.SecretAccessKeyFile)
		if err != nil {
			return admin.Request{}, fmt.Errorf("%s: credentials.secret_access_key_file: cannot read it: %w", path, err)
		}
		req.Credentials.SecretAccessKey = strings.TrimRight(string(b), "\r\n")
	}
	return req, nil
}

// apiCall is one call to the admin API.
type apiCall struct {
	base, token string
	client      *http.Client
}

type apiAnswer struct {
	status int
	etag   string
	body   []byte
}

func (c apiCall) do(ctx context.Context, method, path string, body any, hdr map[string]string) (apiAnswer, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return apiAnswer{}, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return apiAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return apiAnswer{}, fmt.Errorf("the admin API at %s does not answer: %w (set --url or HITSHIP_ADMIN_URL)", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return apiAnswer{status: resp.StatusCode, etag: resp.Header.Get("ETag"), body: data}, err
}

// problem renders an error answer: the message, each problem by field, and
// a failed test's answer.
func problem(a apiAnswer) string {
	var e struct {
		Error    string          `json:"error"`
		Message  string          `json:"message"`
		Problems []admin.Problem `json:"problems"`
		Test     *struct{ Problem, Message, Fix string }
	}
	if json.Unmarshal(a.body, &e) != nil || e.Message == "" {
		return fmt.Sprintf("the admin API answered HTTP %d", a.status)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", e.Message, a.status)
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", p.Field, p.Problem)
		if p.Fix != "" {
			fmt.Fprintf(&b, ". Fix: %s", p.Fix)
		}
	}
	if e.Test != nil {
		fmt.Fprintf(&b, "\n  test: %s", e.Test.Message)
		if e.Test.Fix != "" {
			fmt.Fprintf(&b, "\n  fix: %s", e.Test.Fix)
		}
	}
	if a.status == http.StatusUnauthorized {
		b.WriteString("\n  set HITSHIP_ADMIN_TOKEN (or --token-file) to the replica's admin token")
	}
	return b.String()
}

func cmdIntegrations(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("integrations", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, integrationsUsage) }
	base := fs.String("url", cmp.Or(os.Getenv("HITSHIP_ADMIN_URL"), "http://127.0.0.1:9464"), "the admin API of a replica")
	tokenFile := fs.String("token-file", "", "a file holding the admin token (default: HITSHIP_ADMIN_TOKEN)")
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	token := os.Getenv("HITSHIP_ADMIN_TOKEN")
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "hitship integrations: --token-file: %v\n", err)
			return 2
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		fmt.Fprintln(stderr, "hitship integrations: set HITSHIP_ADMIN_TOKEN (or --token-file) to the replica's admin token (http.admin_token_env)")
		return 2
	}
	if _, err := url.Parse(*base); err != nil {
		fmt.Fprintf(stderr, "hitship integrations: --url: %v\n", err)
		return 2
	}
	c := apiCall{base: strings.TrimSuffix(*base, "/"), token: token, client: &http.Client{Timeout: 2 * time.Minute}}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	out := func(a apiAnswer, ok int, table func(v map[string]any)) int {
		if a.status != ok {
			fmt.Fprintf(stderr, "hitship integrations %s: %s\n", sub, problem(a))
			return 1
		}
		if *asJSON || table == nil {
			stdout.Write(a.body)
			return 0
		}
		var v map[string]any
		if err := json.Unmarshal(a.body, &v); err != nil {
			stdout.Write(a.body)
			return 0
		}
		table(v)
		return 0
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "hitship integrations %s: %v\n", sub, err)
		return 1
	}
	sfs := flag.NewFlagSet("integrations "+sub, flag.ContinueOnError)
	sfs.SetOutput(stderr)
	file := sfs.String("f", "", "the integration, YAML or JSON")
	anyway := sfs.Bool("save-anyway", false, "save it even if its test write fails")
	reason := sfs.String("reason", "", "why (disable)")
	client := sfs.Int64("client", 0, "the client account id (onboarding)")
	bucket := sfs.String("bucket", "", "the customer's bucket (onboarding)")
	source := sfs.String("source-name", "", "a Security Lake custom source's name (onboarding: what CreateCustomLogSource takes)")
	sourceVersion := sfs.String("source-version", "", "its version, if any (onboarding)")
	if err := sfs.Parse(rest); err != nil {
		return 2
	}
	name := sfs.Arg(0)
	needName := func() bool {
		if name == "" {
			fmt.Fprintf(stderr, "hitship integrations %s: name the integration\n", sub)
			return false
		}
		return true
	}
	q := ""
	if *anyway {
		q = "?save_anyway=true"
	}
	switch sub {
	case "list":
		a, err := c.do(ctx, http.MethodGet, "/v1/integrations", nil, nil)
		if err != nil {
			return fail(err)
		}
		return out(a, http.StatusOK, func(v map[string]any) { printTable(stdout, v["integrations"]) })
	case "show":
		if !needName() {
			return 2
		}
		a, err := c.do(ctx, http.MethodGet, "/v1/integrations/"+url.PathEscape(name), nil, nil)
		if err != nil {
			return fail(err)
		}
		return out(a, http.StatusOK, func(v map[string]any) { printTable(stdout, []any{v}) })
	case "create", "apply":
		if *file == "" {
			fmt.Fprintf(stderr, "hitship integrations %s: -f FILE is required\n", sub)
			return 2
		}
		req, err := readIntegrationFile(*file)
		if err != nil {
			return fail(err)
		}
		if sub == "apply" {
			cur, err := c.do(ctx, http.MethodGet, "/v1/integrations/"+url.PathEscape(req.Name), nil, nil)
			if err != nil {
				return fail(err)
			}
			if cur.status == http.StatusOK {
				a, err := c.do(ctx, http.MethodPut, "/v1/integrations/"+url.PathEscape(req.Name)+q, req, map[string]string{"If-Match": cur.etag})
				if err != nil {
					return fail(err)
				}
				return out(a, http.StatusOK, func(v map[string]any) { printTable(stdout, []any{v}) })
			}
		}
		a, err := c.do(ctx, http.MethodPost, "/v1/integrations"+q, req, nil)
		if err != nil {
			return fail(err)
		}
		return out(a, http.StatusCreated, func(v map[string]any) { printTable(stdout, []any{v}); printOnboarding(stdout, v["onboarding"]) })
	case "delete":
		if !needName() {
			return 2
		}
		a, err := c.do(ctx, http.MethodDelete, "/v1/integrations/"+url.PathEscape(name), nil, nil)
		if err != nil {
			return fail(err)
		}
		return out(a, http.StatusOK, func(map[string]any) { fmt.Fprintf(stdout, "deleted %s and everything hitship kept for it\n", name) })
	case "enable", "disable":
		if !needName() {
			return 2
		}
		var body any
		if sub == "disable" && *reason != "" {
			body = map[string]string{"reason": *reason}
		}
		a, err := c.do(ctx, http.MethodPost, "/v1/integrations/"+url.PathEscape(name)+"/"+sub, body, nil)
		if err != nil {
			return fail(err)
		}
		return out(a, http.StatusOK, func(v map[string]any) { printTable(stdout, []any{v["integration"]}) })
	case "test":
		var a apiAnswer
		var err error
		switch {
		case *file != "":
			req, rerr := readIntegrationFile(*file)
			if rerr != nil {
				return fail(rerr)
			}
			a, err = c.do(ctx, http.MethodPost, "/v1/integrations/test", req, nil)
		case needName():
			a, err = c.do(ctx, http.MethodPost, "/v1/integrations/"+url.PathEscape(name)+"/test", nil, nil)
		default:
			return 2
		}
		if err != nil {
			return fail(err)
		}
		code := out(a, http.StatusOK, func(v map[string]any) {
			if v["ok"] == true {
				fmt.Fprintf(stdout, "ok: %v\n", v["message"])
				return
			}
			fmt.Fprintf(stdout, "FAILED (%v): %v\nfix: %v\n", v["problem"], v["message"], v["fix"])
		})
		var ans struct{ OK bool }
		if code == 0 && (json.Unmarshal(a.body, &ans) != nil || !ans.OK) {
			return 1 // the test ran and failed
		}
		return code
	case "onboarding":
		if *client <= 0 {
			fmt.Fprintln(stderr, "hitship integrations onboarding: --client ID is required")
			return 2
		}
		q := url.Values{"bucket": {*bucket}}
		if *source != "" {
			q.Set("source_name", *source)
			q.Set("source_version", *sourceVersion)
		}
		a, err := c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/clients/%d/onboarding?%s", *client, q.Encode()), nil, nil)
		if err != nil {
			return fail(err)
		}
		return out(a, http.StatusOK, func(v map[string]any) { printOnboarding(stdout, v) })
	}
	fmt.Fprintf(stderr, "hitship integrations: unknown command %q\n\n%s", sub, integrationsUsage)
	return 2
}

// printTable prints integrations (API views) one per line.
func printTable(w io.Writer, list any) {
	items, _ := list.([]any)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCLIENT\tSOURCE\tSTATE\tBUCKET\tPREFIX\tFORMAT\tAUTH")
	for _, it := range items {
		v, _ := it.(map[string]any)
		if v == nil {
			continue
		}
		auth, _ := v["auth"].(map[string]any)
		state := fmt.Sprint(v["state"])
		if r, ok := v["reason"].(string); ok && r != "" {
			state += " (" + r + ")"
		}
		prefix := fmt.Sprint(v["prefix"])
		if loc, _ := v["location"].(string); loc != "" { // a security_lake source: its partitions
			prefix = strings.TrimPrefix(loc, fmt.Sprintf("s3://%v/", v["bucket"]))
		}
		fmt.Fprintf(tw, "%v\t%v\t%v\t%s\t%v\t%v\t%v\t%v\n", v["name"], jsonInt(v["client_id"]), v["source"], state, v["bucket"], prefix, v["format"], auth["method"])
	}
	_ = tw.Flush()
}

// printOnboarding prints what a customer setting up a role pastes.
func printOnboarding(w io.Writer, o any) {
	v, _ := o.(map[string]any)
	if v == nil {
		return
	}
	indent := func(x any) string {
		b, _ := json.MarshalIndent(x, "  ", "  ")
		return string(b)
	}
	if sl, _ := v["security_lake"].(map[string]any); sl != nil {
		fmt.Fprintf(w, "\nfor the customer (client %v), Security Lake's CreateCustomLogSource:\n  source name:   %v\n  event classes: %v\n  principal:     %v\n  external ID:   %v\n  as a command (fill in your Glue crawler role):\n  %v\n",
			jsonInt(v["client_id"]), sl["source_name"], sl["event_classes"], sl["principal"], sl["external_id"], sl["command"])
		return
	}
	fmt.Fprintf(w, "\nfor the customer (client %v):\n  account to trust: %v\n  external ID:      %v\n  permission policy:\n  %s\n  trust policy:\n  %s\n",
		jsonInt(v["client_id"]), v["account_id"], v["external_id"], indent(v["permission_policy"]), indent(v["trust_policy"]))
}

func jsonInt(v any) string {
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprint(v)
}
