package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"hitship/config"
	"hitship/integrations/registry"
	s3sink "hitship/sink/s3"
)

// Request is the body of a create (POST /v1/integrations) or a replace
// (PUT /v1/integrations/{name}): the config file's integration fields, with
// the secret of an access key sent in the body (stored sealed, never shown).
type Request struct {
	Name        string `json:"name"`
	ClientID    int64  `json:"client_id"`
	Region      string `json:"region"`
	Bucket      string `json:"bucket"`
	Prefix      string `json:"prefix,omitempty"`
	Format      string `json:"format,omitempty"`
	Compression string `json:"compression,omitempty"`
	// Type is "s3" (or empty) or "security_lake", which takes SecurityLake.
	Type         string               `json:"type,omitempty"`
	SecurityLake *config.SecurityLake `json:"security_lake,omitempty"`
	Events       []string             `json:"events,omitempty"`
	Endpoint     string               `json:"endpoint,omitempty"`
	PathStyle    bool                 `json:"path_style,omitempty"`
	Manifest     bool                 `json:"manifest,omitempty"`
	Credentials  Credentials          `json:"credentials"`
}

// Credentials of a Request: a role ARN, or an access key id and its secret.
type Credentials struct {
	RoleARN         string `json:"role_arn,omitempty"`
	AccessKeyID     string `json:"access_key_id,omitempty"`
	SecretAccessKey string `json:"secret_access_key,omitempty"`
}

// Problem is one thing wrong with a Request, by field, with the fix.
type Problem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
	Fix     string `json:"fix,omitempty"`
}

// Definitions creates and replaces integrations (integrations/defs through
// the service). Problems are answered 400; the errors below map to their
// statuses, any other to 503.
//
// Create and Replace run the integration's test write first and refuse it
// with a *TestFailedError when it fails, unless saveAnyway.
type Definitions interface {
	Create(ctx context.Context, req Request, by string, saveAnyway bool) (Integration, []Problem, error)
	Replace(ctx context.Context, name string, ifMatch int64, req Request, by string, saveAnyway bool) (Integration, []Problem, error)
	// Test is test-before-save: the test write of req, storing nothing.
	Test(ctx context.Context, req Request) (s3sink.Answer, []Problem, error)
	// Delete removes an API integration (ifMatch 0: whatever its version)
	// and everything hitship keeps for it; it answers what it removed.
	Delete(ctx context.Context, name string, ifMatch int64, by string) (any, error)
}

// TestFailedError refuses an integration whose test write failed.
type TestFailedError struct{ Answer s3sink.Answer }

func (e *TestFailedError) Error() string { return "the test write failed: " + e.Answer.Message }

// Errors a Definitions returns.
var (
	ErrExists   = errors.New("an integration of that name exists")
	ErrNotFound = errors.New("no integration of that name")
	ErrFromFile = errors.New("the integration is defined in the config file")
	ErrVersion  = errors.New("the integration changed since that version")
	ErrBusy     = errors.New("another change of this integration is in progress")
)

func decodeRequest(w http.ResponseWriter, r *http.Request) (Request, bool) {
	var req Request
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		msg := "the body must be one JSON object with the integration's fields"
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			msg = fmt.Sprintf("field %q must be a %s", te.Field, te.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			msg = "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "; the fields are those of the config file's integration (name, client_id, region, bucket, prefix, format, compression, events, endpoint, path_style, manifest, credentials)"
		}
		writeError(w, http.StatusBadRequest, "bad_request", msg)
		return Request{}, false
	}
	return req, true
}

// saveAnyway reads ?save_anyway=true|false.
func saveAnyway(w http.ResponseWriter, r *http.Request) (bool, bool) {
	switch r.URL.Query().Get("save_anyway") {
	case "", "false", "0":
		return false, true
	case "true", "1":
		return true, true
	}
	writeError(w, http.StatusBadRequest, "bad_request", "save_anyway must be true or false")
	return false, false
}

// testDefinition answers POST /v1/integrations/test: test-before-save.
func (a *API) testDefinition(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeRequest(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.TestTimeout)
	defer cancel()
	ans, problems, err := a.deps.Definitions.Test(ctx, req)
	switch {
	case len(problems) > 0:
		a.written(w, r, 0, Integration{}, problems, nil)
	case err != nil:
		a.log.Error("admin: test-before-save could not run", "integration", req.Name, "err", err)
		writeError(w, http.StatusInternalServerError, "test_failed_to_run", "the test could not run; the service log says why")
	default:
		writeJSON(w, http.StatusOK, TestResult{Integration: req.Name, Answer: ans})
	}
}

// onboarding answers GET /v1/clients/{id}/onboarding[?bucket=]
// [&source_name=[&source_version=]]: with a source name, for a Security
// Lake custom source (what CreateCustomLogSource takes).
func (a *API) onboarding(w http.ResponseWriter, r *http.Request, id string) {
	client, err := strconv.ParseInt(id, 10, 64)
	if err != nil || client <= 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "the client id must be a positive number, as in /v1/clients/7/onboarding")
		return
	}
	q := r.URL.Query()
	o, err := a.deps.Onboarding(client, q.Get("bucket"))
	if err != nil {
		writeError(w, http.StatusConflict, "not_configured", err.Error())
		return
	}
	if name := q.Get("source_name"); name != "" {
		if !config.ValidSourceName(name) || !config.ValidSourceVersion(q.Get("source_version")) {
			writeError(w, http.StatusBadRequest, "bad_request", "source_name must be 1-20 letters, digits, '.', '_' or '-' (and source_version letters, digits, '.', '_', '-'), as given to CreateCustomLogSource")
			return
		}
		sl := s3sink.NewSecurityLakeSource(o, config.SecurityLakeEventClass, name, q.Get("source_version"))
		o.SecurityLake = &sl
	}
	writeJSON(w, http.StatusOK, o)
}

// DefaultEvents and MaxEvents bound GET /v1/integrations/{name}/events's
// ?limit=.
const (
	DefaultEvents = 100
	MaxEvents     = 1000
)

// events answers GET /v1/integrations/{name}/events[?limit=N]: the latest
// events of the name (state changes, create, update, delete: who, when,
// why), oldest first. A deleted integration's history is answered too: the
// name need not be configured.
func (a *API) events(w http.ResponseWriter, r *http.Request, name string) {
	n := DefaultEvents
	if v := r.URL.Query().Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > MaxEvents {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("limit must be a number from 1 to %d", MaxEvents))
			return
		}
		n = l
	}
	evs, err := a.deps.Registry.EventsOf(r.Context(), name, n)
	switch {
	case registry.IsInvalid(err):
		writeError(w, http.StatusBadRequest, "bad_request", "invalid integration name "+quote(name))
		return
	case err != nil:
		a.redisDown(w, "events", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Integration string           `json:"integration"`
		Events      []registry.Event `json:"events"`
	}{name, append([]registry.Event{}, evs...)})
}

// etag is the entity tag of an integration's version.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// create answers POST /v1/integrations.
func (a *API) create(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeRequest(w, r)
	if !ok {
		return
	}
	anyway, ok := saveAnyway(w, r)
	if !ok {
		return
	}
	in, problems, err := a.deps.Definitions.Create(r.Context(), req, by(r), anyway)
	a.written(w, r, http.StatusCreated, in, problems, err)
}

// ifMatch reads an optional If-Match (0 when absent).
func ifMatch(r *http.Request) (int64, bool) {
	m := strings.TrimSpace(r.Header.Get("If-Match"))
	if m == "" {
		return 0, true
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(m, "W/"), `"`), 10, 64)
	return v, err == nil && v > 0
}

// remove answers DELETE /v1/integrations/{name} for an API integration.
func (a *API) remove(w http.ResponseWriter, r *http.Request, name string) {
	version, ok := ifMatch(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_request", "If-Match must be the ETag a GET answered, such as \"1733390000000\"")
		return
	}
	out, err := a.deps.Definitions.Delete(r.Context(), name, version, by(r))
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "unknown_integration", "no integration of that name was created through the API")
	case errors.Is(err, ErrVersion):
		writeError(w, http.StatusPreconditionFailed, "version_mismatch", "the integration changed since you read it: GET it again, and send its new ETag in If-Match")
	case errors.Is(err, ErrBusy):
		writeError(w, http.StatusConflict, "busy", "another change of this integration is in progress; try again")
	case err != nil:
		a.log.Error("admin: integration not deleted", "integration", name, "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the integration was not deleted, or not everything hitship keeps for it was removed; calling DELETE again finishes it: "+err.Error())
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// replace answers PUT /v1/integrations/{name}.
func (a *API) replace(w http.ResponseWriter, r *http.Request, name string) {
	if strings.TrimSpace(r.Header.Get("If-Match")) == "" {
		writeError(w, http.StatusPreconditionRequired, "precondition_required",
			"send If-Match with the ETag of the integration as read (GET /v1/integrations/"+name+"), so that a change made meanwhile is not overwritten")
		return
	}
	version, ok := ifMatch(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_request", "If-Match must be the ETag a GET answered, such as \"1733390000000\"")
		return
	}
	req, ok := decodeRequest(w, r)
	if !ok {
		return
	}
	if req.Name == "" {
		req.Name = name
	}
	if req.Name != name {
		writeError(w, http.StatusBadRequest, "bad_request", "the body's name must be the integration's; an integration cannot be renamed (create one and delete the other)")
		return
	}
	anyway, ok := saveAnyway(w, r)
	if !ok {
		return
	}
	in, problems, err := a.deps.Definitions.Replace(r.Context(), name, version, req, by(r), anyway)
	a.written(w, r, http.StatusOK, in, problems, err)
}

func (a *API) written(w http.ResponseWriter, r *http.Request, status int, in Integration, problems []Problem, err error) {
	switch {
	case len(problems) > 0:
		writeJSON(w, http.StatusBadRequest, struct {
			Error    string    `json:"error"`
			Message  string    `json:"message"`
			Problems []Problem `json:"problems"`
		}{"invalid", "the integration has problems; each names its field and the fix", problems})
		return
	case errors.As(err, new(*TestFailedError)):
		var tf *TestFailedError
		errors.As(err, &tf)
		writeJSON(w, http.StatusUnprocessableEntity, struct {
			Error   string `json:"error"`
			Message string `json:"message"`
			Test    any    `json:"test"`
		}{"test_failed", "the test write to the bucket failed, so the integration was not saved: fix what the test says, or add ?save_anyway=true to save it as it is", tf.Answer})
		return
	case errors.Is(err, ErrExists):
		writeError(w, http.StatusConflict, "exists", "an integration of that name exists; choose another name, or replace it (PUT with If-Match)")
		return
	case errors.Is(err, ErrFromFile):
		writeError(w, http.StatusConflict, "defined_in_file", "the integration is defined in the config file: change it there and reload (kill -HUP)")
		return
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "unknown_integration", "no integration of that name was created through the API")
		return
	case errors.Is(err, ErrVersion):
		writeError(w, http.StatusPreconditionFailed, "version_mismatch", "the integration changed since you read it: GET it again, and send its new ETag in If-Match")
		return
	case errors.Is(err, ErrBusy):
		writeError(w, http.StatusConflict, "busy", "another change of this integration is in progress; try again")
		return
	case err != nil:
		a.log.Error("admin: integration not written", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the integration was not written: "+err.Error())
		return
	}
	st, serr := a.deps.Registry.Status(r.Context(), in.Name)
	if serr != nil {
		a.log.Warn("admin: registry unavailable after a write", "err", serr)
	}
	v := view(in, st)
	if in.RoleARN != "" && a.deps.Onboarding != nil {
		if o, err := a.deps.Onboarding(in.ClientID, in.Bucket); err == nil {
			if in.Type == config.TypeSecurityLake {
				sl := s3sink.NewSecurityLakeSource(o, config.SecurityLakeEventClass, in.SecurityLake.SourceName, in.SecurityLake.SourceVersion)
				o.SecurityLake = &sl
			}
			v.Onboarding = &o
		}
	}
	w.Header().Set("ETag", etag(in.Version))
	writeJSON(w, status, v)
}
