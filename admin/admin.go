package admin

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"hitship/config"
	"hitship/health"
	"hitship/integrations/registry"
	s3sink "hitship/sink/s3"
)

// DefaultTestTimeout bounds one test write.
const DefaultTestTimeout = 30 * time.Second

const maxBody = 64 << 10

// Auth methods of an Integration view.
const (
	AuthRole      = "role"
	AuthAccessKey = "access_key"
)

// Integration is the configured view of one integration the API shows. It
// has no field for a secret on purpose.
type Integration struct {
	Name        string
	ClientID    int64
	Region      string
	Bucket      string
	Prefix      string
	Format      string
	Compression string
	// Type is config.TypeS3 ("" too) or config.TypeSecurityLake, with
	// SecurityLake and the Location its objects go to.
	Type         string
	SecurityLake config.SecurityLake
	Location     string
	// RoleARN is set for the role method, AccessKeyID for access keys.
	RoleARN     string
	AccessKeyID string
	// ConfigEnabled is the config file's "enabled".
	ConfigEnabled bool
	// Source is "file" or "api" (created through the API); Version is an
	// API integration's version (its ETag), 0 for the file's.
	Source  string
	Version int64
}

// Config configures the API.
type Config struct {
	// Token is the bearer token (from an env var or a file); Tokens are
	// named ones (name -> token), whose name every change records. At least
	// one is required.
	Token  string
	Tokens map[string]string
	// TestTimeout bounds a test write (default DefaultTestTimeout).
	TestTimeout time.Duration
}

// Deps are what the API works with.
type Deps struct {
	// Logger receives state changes and failures; nil discards.
	Logger *slog.Logger
	// Registry holds the runtime state. Required.
	Registry *registry.Store
	// Integrations returns the current config view (it changes on reload).
	// Required; called once per request.
	Integrations func() []Integration
	// Tester runs the test write of the named integration (s3sink.TestWrite +
	// s3sink.Explain). Required. A returned error means the test could not
	// run at all; it is logged and answered with 500 without its text.
	Tester func(ctx context.Context, name string) (s3sink.Answer, error)
	// Retries, if set, answers GET /v1/integrations/{name}/retries with the
	// integration's health ledger and retry queue (any JSON value). An error
	// is answered 503.
	Retries func(ctx context.Context, name string) (any, error)
	// OnEnable, if set, is called after an enable changed the state (the
	// service resets the health ledger there); an error is logged only.
	OnEnable func(ctx context.Context, name string) error
	// Forget, if set, answers DELETE /v1/integrations/{name}[?purge=true]
	// for an integration that is no longer configured (the API answers 409
	// for a configured one before calling it): it removes what hitship keeps
	// for it and returns a JSON value saying what. by names the caller. An
	// error is answered 503.
	Forget func(ctx context.Context, name string, purge bool, by string) (any, error)
	// Definitions, if set, answers POST /v1/integrations (create) and PUT
	// /v1/integrations/{name} (replace, with If-Match).
	Definitions Definitions
	// Health, if set, adds an integration's latest outcomes and 12-hour
	// ledger to list and show; an error leaves them out (logged).
	Health func(ctx context.Context, name string) (Health, error)
	// Onboarding, if set, answers GET /v1/clients/{id}/onboarding[?bucket=]:
	// what the console shows a customer setting up a role. An error is a
	// missing setting, answered 409 with its text.
	Onboarding func(clientID int64, bucket string) (s3sink.Onboarding, error)
}

// API is the admin http.Handler.
type API struct {
	tokens []namedSum // every token's digest, with its name ("" for Config.Token)
	cfg    Config
	deps   Deps
	log    *slog.Logger
}

var _ http.Handler = (*API)(nil)

// New validates cfg and deps.
func New(cfg Config, deps Deps) (*API, error) {
	switch {
	case cfg.Token == "" && len(cfg.Tokens) == 0:
		return nil, errors.New("admin: empty token: the admin API must not run without one")
	case strings.TrimSpace(cfg.Token) != cfg.Token:
		return nil, errors.New("admin: token has leading or trailing whitespace")
	case deps.Registry == nil:
		return nil, errors.New("admin: nil Registry")
	case deps.Integrations == nil:
		return nil, errors.New("admin: nil Integrations")
	case deps.Tester == nil:
		return nil, errors.New("admin: nil Tester")
	case cfg.TestTimeout < 0:
		return nil, errors.New("admin: negative TestTimeout")
	}
	if cfg.TestTimeout == 0 {
		cfg.TestTimeout = DefaultTestTimeout
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &API{deps: deps, log: log}
	if cfg.Token != "" {
		a.tokens = append(a.tokens, namedSum{sum: sha256.Sum256([]byte(cfg.Token))})
	}
	for name, t := range cfg.Tokens {
		if name == "" || t == "" || strings.TrimSpace(t) != t {
			return nil, fmt.Errorf("admin: token %q is empty or has surrounding whitespace", name)
		}
		a.tokens = append(a.tokens, namedSum{name: name, sum: sha256.Sum256([]byte(t))})
	}
	cfg.Token, cfg.Tokens = "", nil // only the digests are kept
	a.cfg = cfg
	return a, nil
}

// Auth is the authentication part of an integration view.
type Auth struct {
	Method      string `json:"method"`
	RoleARN     string `json:"role_arn,omitempty"`
	AccessKeyID string `json:"access_key_id,omitempty"`
}

// View is the JSON of one integration.
type View struct {
	Name        string `json:"name"`
	ClientID    int64  `json:"client_id"`
	Region      string `json:"region"`
	Bucket      string `json:"bucket"`
	Prefix      string `json:"prefix"`
	Format      string `json:"format"`
	Compression string `json:"compression"`
	// Type is "s3" or "security_lake"; a security_lake integration shows its
	// source and Location, s3://{bucket}/{its partitions}.
	Type          string               `json:"type"`
	SecurityLake  *config.SecurityLake `json:"security_lake,omitempty"`
	Location      string               `json:"location,omitempty"`
	Auth          Auth                 `json:"auth"`
	ConfigEnabled bool                 `json:"config_enabled"`
	Source        string               `json:"source"`            // "file" or "api"
	Version       int64                `json:"version,omitempty"` // an API integration's (its ETag)
	State         registry.State       `json:"state"`
	Reason        string               `json:"reason,omitempty"`
	Since         time.Time            `json:"since,omitzero"`
	By            string               `json:"by,omitempty"`
	// LastSuccessAt, LastError and Ledger are the integration's latest
	// outcomes (in plain words, with the side of the failure's cause:
	// customer, provider or hitship) and its 12-hour ledger.
	LastSuccessAt time.Time       `json:"last_success_at,omitzero"`
	LastError     *health.Failure `json:"last_error,omitempty"`
	Ledger        *Ledger         `json:"ledger_12h,omitempty"`
	// Delivered1h is what reached the bucket in the last hour: objects
	// written and the hits in them (replays that found an object there
	// excluded).
	Delivered1h *health.Delivered `json:"delivered_1h,omitempty"`
	// Onboarding is in the answer of a create or replace of a role
	// integration: what the customer pastes (GET /v1/clients/{id}/onboarding).
	Onboarding *s3sink.Onboarding `json:"onboarding,omitempty"`
}

// Ledger is an integration's 12-hour health ledger: only failures on the
// customer's side count toward auto-disable (60% of at least the configured
// attempts, spanning at least the configured time).
type Ledger struct {
	Attempts         int `json:"attempts"`
	Failures         int `json:"failures"`
	CustomerFailures int `json:"customer_failures"`
}

// Health is what Deps.Health answers for one integration.
type Health struct {
	health.Last
	Ledger      Ledger
	Delivered1h health.Delivered
}

// StateChange answers disable and enable.
type StateChange struct {
	Changed     bool            `json:"changed"`
	Event       *registry.Event `json:"event,omitempty"`
	Integration View            `json:"integration"`
}

// TestResult answers a test.
type TestResult struct {
	Integration string `json:"integration"`
	s3sink.Answer
}

type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// ServeHTTP authenticates, then routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	name, ok := a.authorized(r)
	if !ok {
		h.Set("WWW-Authenticate", `Bearer realm="hitship-admin"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
		return
	}
	if name != "" {
		r = r.WithContext(context.WithValue(r.Context(), tokenName{}, name))
	}
	segs, ok := splitPath(r.URL)
	if ok && len(segs) == 4 && segs[0] == "v1" && segs[1] == "clients" && segs[3] == "onboarding" && a.deps.Onboarding != nil {
		if allow(w, r, http.MethodGet) {
			a.onboarding(w, r, segs[2])
		}
		return
	}
	if !ok || len(segs) < 2 || segs[0] != "v1" || segs[1] != "integrations" || len(segs) > 4 {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	switch len(segs) {
	case 2:
		if r.Method == http.MethodPost && a.deps.Definitions != nil {
			a.create(w, r)
			return
		}
		if allow(w, r, http.MethodGet) {
			a.list(w, r)
		}
		return
	case 3:
		if r.Method == http.MethodDelete && a.deps.Forget != nil {
			a.forget(w, r, segs[2])
			return
		}
		if r.Method == http.MethodPut && a.deps.Definitions != nil {
			a.replace(w, r, segs[2])
			return
		}
		if r.Method == http.MethodPost && segs[2] == "test" && a.deps.Definitions != nil {
			a.testDefinition(w, r)
			return
		}
		if allow(w, r, http.MethodGet) {
			a.show(w, r, segs[2])
		}
		return
	}
	name, action := segs[2], segs[3]
	if action == "events" {
		if allow(w, r, http.MethodGet) {
			a.events(w, r, name)
		}
		return
	}
	if action == "retries" && a.deps.Retries != nil {
		if !allow(w, r, http.MethodGet) {
			return
		}
		if _, ok := a.find(name); !ok {
			writeError(w, http.StatusNotFound, "unknown_integration", "no integration named "+quote(name))
			return
		}
		v, err := a.deps.Retries(r.Context(), name)
		if err != nil {
			a.redisDown(w, "retries", err)
			return
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	var handle func(http.ResponseWriter, *http.Request, Integration)
	switch action {
	case "test":
		handle = a.test
	case "disable":
		handle = a.disable
	case "enable":
		handle = a.enable
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	if !allow(w, r, http.MethodPost) {
		return
	}
	in, ok := a.find(name)
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_integration", "no integration named "+quote(name))
		return
	}
	handle(w, r, in)
}

// authorized compares SHA-256 digests: equal length whatever was sent.
//
// Every token is compared, whichever matches: the time does not tell which.
// It returns the matching token's name ("" for Config.Token).
func (a *API) authorized(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		token = ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	name, match := "", 0
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			name, match = t.name, 1
		}
	}
	return name, match == 1 && token != ""
}

// namedSum is one token's digest.
type namedSum struct {
	name string
	sum  [sha256.Size]byte
}

// tokenName is the request context's key of the caller's token name.
type tokenName struct{}

// splitPath returns the unescaped path segments; ok is false for empty
// segments (".../integrations//x") or bad escapes.
func splitPath(u *url.URL) ([]string, bool) {
	p := strings.Trim(u.EscapedPath(), "/")
	if p == "" {
		return nil, false
	}
	raw := strings.Split(p, "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		v, err := url.PathUnescape(s)
		if err != nil || v == "" {
			return nil, false
		}
		segs[i] = v
	}
	return segs, true
}

func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+method)
	return false
}

func (a *API) find(name string) (Integration, bool) {
	for _, in := range a.deps.Integrations() {
		if in.Name == name {
			return in, true
		}
	}
	return Integration{}, false
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	ins := a.deps.Integrations()
	names := make([]string, len(ins))
	for i, in := range ins {
		names[i] = in.Name
	}
	states, err := a.deps.Registry.All(r.Context(), names)
	if err != nil {
		a.redisDown(w, "list", err)
		return
	}
	out := struct {
		Integrations []View `json:"integrations"`
	}{Integrations: make([]View, 0, len(ins))}
	for _, in := range ins {
		out.Integrations = append(out.Integrations, a.withHealth(r.Context(), view(in, states[in.Name])))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) show(w http.ResponseWriter, r *http.Request, name string) {
	in, ok := a.find(name)
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_integration", "no integration named "+quote(name))
		return
	}
	st, err := a.deps.Registry.Status(r.Context(), in.Name)
	if err != nil {
		a.redisDown(w, "show", err)
		return
	}
	if in.Version > 0 {
		w.Header().Set("ETag", etag(in.Version))
	}
	writeJSON(w, http.StatusOK, a.withHealth(r.Context(), view(in, st)))
}

// forget removes what hitship keeps for an integration that left the config.
func (a *API) forget(w http.ResponseWriter, r *http.Request, name string) {
	purge := false
	if v := r.URL.Query().Get("purge"); v != "" {
		switch v {
		case "true", "1":
			purge = true
		case "false", "0":
		default:
			writeError(w, http.StatusBadRequest, "bad_request", "purge must be true or false")
			return
		}
	}
	if in, ok := a.find(name); ok {
		if in.Source == "api" && a.deps.Definitions != nil {
			a.remove(w, r, name)
			return
		}
		writeError(w, http.StatusConflict, "still_configured", "integration "+quote(name)+
			" is still configured: remove it from the config file and reload every replica, then delete it")
		return
	}
	out, err := a.deps.Forget(r.Context(), name, purge, by(r))
	if err != nil {
		if registry.IsInvalid(err) {
			writeError(w, http.StatusBadRequest, "bad_request", "invalid integration name "+quote(name))
			return
		}
		a.log.Error("admin: forget failed; nothing is lost, calling it again finishes it", "integration", name, "err", err)
		writeError(w, http.StatusServiceUnavailable, "forget_failed",
			"could not remove everything hitship keeps for "+quote(name)+" (Redis, Kafka or the parking bucket did not answer); try again: the service log says why")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) test(w http.ResponseWriter, r *http.Request, in Integration) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.TestTimeout)
	defer cancel()
	ans, err := a.deps.Tester(ctx, in.Name)
	if err != nil {
		a.log.Error("admin: test integration could not run", "integration", in.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "test_not_run", "the test could not run; the service log says why")
		return
	}
	a.log.Info("admin: test integration", "integration", in.Name, "ok", ans.OK, "problem", ans.Problem, "by", by(r))
	writeJSON(w, http.StatusOK, TestResult{Integration: in.Name, Answer: ans})
}

func (a *API) disable(w http.ResponseWriter, r *http.Request, in Integration) {
	var body struct {
		Reason string `json:"reason"`
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "cannot read the body")
		return
	}
	if len(data) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body must be at most %d bytes", maxBody))
		return
	}
	if len(strings.TrimSpace(string(data))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", `the body must be JSON like {"reason": "..."}`)
			return
		}
	}
	reason := strings.TrimSpace(body.Reason)
	if reason == "" {
		reason = "disabled via the admin API"
	}
	ev, changed, err := a.deps.Registry.Disable(r.Context(), in.Name, reason, by(r))
	a.changed(w, r, in, ev, changed, err)
}

func (a *API) enable(w http.ResponseWriter, r *http.Request, in Integration) {
	ev, changed, err := a.deps.Registry.Enable(r.Context(), in.Name, by(r))
	if err == nil && changed && a.deps.OnEnable != nil {
		if herr := a.deps.OnEnable(r.Context(), in.Name); herr != nil {
			a.log.Error("admin: after enable", "integration", in.Name, "err", herr)
		}
	}
	a.changed(w, r, in, ev, changed, err)
}

func (a *API) changed(w http.ResponseWriter, r *http.Request, in Integration, ev registry.Event, changed bool, err error) {
	if err != nil {
		a.redisDown(w, "state change", err)
		return
	}
	out := StateChange{Changed: changed}
	if changed {
		a.log.Info("integration state changed", "event", ev)
		out.Event = &ev
	}
	st, err := a.deps.Registry.Status(r.Context(), in.Name)
	if err != nil {
		a.redisDown(w, "status", err)
		return
	}
	out.Integration = view(in, st)
	writeJSON(w, http.StatusOK, out)
}

func (a *API) redisDown(w http.ResponseWriter, op string, err error) {
	a.log.Error("admin: registry unavailable", "op", op, "err", err)
	writeError(w, http.StatusServiceUnavailable, "registry_unavailable", "the integration registry (Redis) cannot be reached; try again")
}

// withHealth adds the integration's latest outcomes and ledger.
func (a *API) withHealth(ctx context.Context, v View) View {
	if a.deps.Health == nil {
		return v
	}
	h, err := a.deps.Health(ctx, v.Name)
	if err != nil {
		a.log.Warn("admin: health of an integration not read", "integration", v.Name, "err", err)
		return v
	}
	v.LastSuccessAt, v.LastError, v.Ledger, v.Delivered1h = h.SuccessAt, h.Error, &h.Ledger, &h.Delivered1h
	return v
}

func view(in Integration, st registry.Status) View {
	v := View{
		Name: in.Name, ClientID: in.ClientID, Region: in.Region, Bucket: in.Bucket, Prefix: in.Prefix,
		Format: in.Format, Compression: in.Compression, ConfigEnabled: in.ConfigEnabled, Source: cmp.Or(in.Source, "file"), Version: in.Version,
		State: st.State, Reason: st.Reason, Since: st.Since, By: st.By,
		Type: cmp.Or(in.Type, config.TypeS3), Location: in.Location,
	}
	if in.Type == config.TypeSecurityLake {
		sl := in.SecurityLake
		v.SecurityLake = &sl
	}
	if v.State == "" {
		v.State = registry.Enabled
	}
	switch {
	case in.RoleARN != "":
		v.Auth = Auth{Method: AuthRole, RoleARN: in.RoleARN}
	case in.AccessKeyID != "":
		v.Auth = Auth{Method: AuthAccessKey, AccessKeyID: in.AccessKeyID}
	default:
		v.Auth = Auth{Method: "none"}
	}
	return v
}

// by names the caller of a change: "admin-api:{token name}@{peer}" for a
// named token, "admin-api@{peer}" for http.admin_token.
func by(r *http.Request) string {
	if name, ok := r.Context().Value(tokenName{}).(string); ok {
		return "admin-api:" + name + "@" + r.RemoteAddr
	}
	return "admin-api@" + r.RemoteAddr
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return fmt.Sprintf("%q", s)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":"internal","message":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}
