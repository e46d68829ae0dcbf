package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"hitship/admin"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	s3sink "hitship/sink/s3"
)

// TestDelete: DELETE /v1/integrations/{name} is refused for a configured
// integration, checks purge, hands the rest to Deps.Forget with the caller,
// and answers 503 when that fails. Without Deps.Forget it is not allowed.
func TestDelete(t *testing.T) {
	e := newEnv(t)
	if c, _, _ := e.do(t, http.MethodDelete, "/v1/integrations/gone", "", bearer); c != http.StatusMethodNotAllowed {
		t.Errorf("DELETE without a Forget dependency: %d, want 405", c)
	}

	r := testenv.MustRedis(t, testenv.RedisOptions{Persist: true})
	store, err := registry.New(r.Client(), "hitship:", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		name, by string
		purge    bool
	}
	var calls []call
	api, err := admin.New(admin.Config{Token: token}, admin.Deps{
		Registry:     store,
		Integrations: func() []admin.Integration { return integrations },
		Tester:       func(context.Context, string) (s3sink.Answer, error) { return s3sink.Answer{}, nil },
		Forget: func(ctx context.Context, name string, purge bool, by string) (any, error) {
			calls = append(calls, call{name, by, purge})
			ev, err := store.Forget(ctx, name, "removed from the config", by)
			return map[string]any{"event": ev}, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(api)
	t.Cleanup(e.srv.Close)

	c, _, body := e.do(t, http.MethodDelete, "/v1/integrations/acme", "", bearer)
	if c != http.StatusConflict || body["error"] != "still_configured" || !strings.Contains(body["message"].(string), "reload every replica") {
		t.Errorf("DELETE of a configured integration: %d %v", c, body)
	}
	if c, _, _ := e.do(t, http.MethodDelete, "/v1/integrations/gone?purge=maybe", "", bearer); c != http.StatusBadRequest {
		t.Errorf("purge=maybe: %d, want 400", c)
	}
	if c, _, _ := e.do(t, http.MethodDelete, "/v1/integrations/gone", "", ""); c != http.StatusUnauthorized {
		t.Errorf("DELETE without a token: %d, want 401", c)
	}
	if len(calls) != 0 {
		t.Fatalf("Forget called for refused requests: %+v", calls)
	}
	c, _, body = e.do(t, http.MethodDelete, "/v1/integrations/gone?purge=true", "", bearer)
	if c != http.StatusOK || len(calls) != 1 || calls[0].name != "gone" || !calls[0].purge || !strings.HasPrefix(calls[0].by, "admin-api@") {
		t.Fatalf("DELETE: %d %v, calls %+v", c, body, calls)
	}
	if ev, _ := body["event"].(map[string]any); ev["type"] != registry.DeleteEventType {
		t.Errorf("answer %v, want the delete_integration event", body)
	}
	if c, _, _ := e.do(t, http.MethodDelete, "/v1/integrations/gone", "", bearer); c != http.StatusOK || calls[1].purge {
		t.Errorf("DELETE without purge: %d, calls %+v", c, calls)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	c, _, body = e.do(t, http.MethodDelete, "/v1/integrations/gone", "", bearer)
	if c != http.StatusServiceUnavailable || body["error"] != "forget_failed" {
		t.Errorf("DELETE with Redis down: %d %v; want 503 forget_failed", c, body)
	}
}
