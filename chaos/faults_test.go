package chaos

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestInjector(t *testing.T) {
	tests := []struct {
		name string
		cfg  FaultConfig
		off  bool
		// want: the client sees an answer with one of these statuses (0: no
		// answer, a transport error); served: the server handled the request.
		want   []int
		served bool
		count  func(FaultCounts) int64
	}{
		{name: "no fault", cfg: FaultConfig{}, want: []int{200}, served: true, count: func(c FaultCounts) int64 { return c.Requests }},
		{name: "errors", cfg: FaultConfig{ErrorShare: 1}, want: []int{500, 503}, count: func(c FaultCounts) int64 { return c.Errors500 + c.Errors503 }},
		{name: "faults off", cfg: FaultConfig{ErrorShare: 1}, off: true, want: []int{200}, served: true, count: func(c FaultCounts) int64 { return c.Requests }},
		{name: "slow", cfg: FaultConfig{SlowShare: 1, SlowMin: time.Millisecond, SlowMax: 2 * time.Millisecond}, want: []int{200}, served: true,
			count: func(c FaultCounts) int64 { return c.Slow }},
		{name: "dropped", cfg: FaultConfig{DropShare: 1}, want: []int{0}, count: func(c FaultCounts) int64 { return c.DroppedBefore + c.DroppedAfter }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var served atomic.Int64
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				served.Add(1)
				w.WriteHeader(http.StatusOK)
			})
			in, err := NewInjector(next, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			in.SetFaults(!tt.off)
			srv := httptest.NewServer(in)
			defer srv.Close()
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			const n = 20
			for i := 0; i < n; i++ {
				req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/key", strings.NewReader("body"))
				resp, err := c.Do(req)
				got := 0
				if err == nil {
					got = resp.StatusCode
					if got >= 400 {
						b, _ := io.ReadAll(resp.Body)
						if !strings.Contains(string(b), "<Code>") {
							t.Errorf("error answer without an S3 error code: %s", b)
						}
					}
					resp.Body.Close()
				}
				ok := false
				for _, w := range tt.want {
					ok = ok || got == w
				}
				if !ok {
					t.Fatalf("request %d: status %d (err %v), want one of %v", i, got, err, tt.want)
				}
			}
			if got := tt.count(in.Counts()); got != n {
				t.Errorf("counted %d faults of the kind, want %d (%+v)", got, n, in.Counts())
			}
			if s := served.Load(); tt.served && s != n {
				t.Errorf("server handled %d requests, want %d", s, n)
			}
			if s := served.Load(); !tt.served && tt.name == "errors" && s != 0 {
				t.Errorf("server handled %d requests answered with an injected error", s)
			}
		})
	}
}

func TestFaultConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  FaultConfig
		ok   bool
	}{
		{name: "zero", ok: true},
		{name: "chaos defaults", cfg: FaultConfig{ErrorShare: 0.05, DropShare: 0.02, SlowShare: 0.05, SlowMax: time.Second}, ok: true},
		{name: "negative share", cfg: FaultConfig{ErrorShare: -0.1}},
		{name: "sum over one", cfg: FaultConfig{ErrorShare: 0.6, DropShare: 0.6}},
		{name: "empty slow range", cfg: FaultConfig{SlowMin: 2 * time.Second, SlowMax: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
