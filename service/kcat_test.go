package service_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// kcatBinary returns kcat or kafkacat from PATH, or "" when neither is installed.
func kcatBinary() string {
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// sharedTestdata reads a file of the canonical sample hits (hit/testdata holds
// the copies of ../shared/testdata this repository carries).
func sharedTestdata(t *testing.T, name string) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "hit", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKcatInterop: the two canonical sample hits produced by the real kcat
// (librdkafka: its own record batch encoding, headers and timestamps) with
// `-H client_id=N` arrive in S3 byte-exact: the JSON-array object is
// sample_hits.json and the NDJSON object is sample_hits.jsonl, byte for byte.
func TestKcatInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	bin := kcatBinary()
	if bin == "" {
		t.Skip("neither kcat nor kafkacat is on PATH (CI installs kafkacat)")
	}
	wantJSON := sharedTestdata(t, "sample_hits.json")
	wantNDJSON := sharedTestdata(t, "sample_hits.jsonl")

	e := newEnv(t, 2, "k-json", "k-ndjson")
	cfg := e.config(t, integ("kcat-json", 7, "k-json", "json"), integ("kcat-ndjson", 8, "k-ndjson", "ndjson"))

	// Tenant 7 on partition 0, tenant 8 on partition 1; tenant 9 (no integration)
	// on partition 0 between them must be skipped and must not disturb the object.
	for _, p := range []struct{ client, partition string }{{"7", "0"}, {"9", "0"}, {"8", "1"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, "-P", "-b", e.kafka.Addrs()[0], "-t", e.topic, "-p", p.partition,
			"-H", "client_id="+p.client)
		cmd.Stdin = bytes.NewReader(wantNDJSON) // one record per line
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
		}
	}
	hw, err := e.kafka.HighWater(context.Background(), e.topic)
	if err != nil {
		t.Fatal(err)
	}
	if hw[0] != 4 || hw[1] != 2 {
		t.Fatalf("kcat produced %v records per partition, want 4 and 2", hw)
	}

	e.startMember(t, "a", cfg)
	waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })

	for _, c := range []struct {
		bucket, key string
		want        []byte
	}{
		{"k-json", `hits/wallarm_hits_1687241400_0_0_[0-9a-f]{16}\.json`, wantJSON},
		{"k-ndjson", `hits/wallarm_hits_1687241400_1_0_[0-9a-f]{16}\.jsonl`, wantNDJSON},
	} {
		objs, err := e.s3.Objects(context.Background(), c.bucket)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 1 {
			keys := make([]string, 0, len(objs))
			for k := range objs {
				keys = append(keys, k)
			}
			t.Fatalf("%s holds %d objects %v, want exactly %s", c.bucket, len(objs), keys, c.key)
		}
		var got []byte
		ok := false
		for k, v := range objs {
			got, ok = v, regexp.MustCompile(`^`+c.key+`$`).MatchString(k)
		}
		if !ok {
			t.Fatalf("%s: no object %s", c.bucket, c.key)
		}
		if !bytes.Equal(got, c.want) {
			t.Fatalf("%s/%s is not byte-exact:\n got %q\nwant %q", c.bucket, c.key, got, c.want)
		}
	}
}
