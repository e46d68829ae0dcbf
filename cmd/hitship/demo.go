package main

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"hitship/admin"
	"hitship/config"
	"hitship/delivery"
	"hitship/internal/embedded"
	"hitship/service"
	"hitship/sink"
)

// cmdDemo runs hitship end to end on embedded parts: a kfake broker, gofakes3 whose
// objects are plain files under <dir>/s3/, Redis (the local server if one answers on
// 127.0.0.1:6379, else in-process), and a synthetic feed of hits from three tenants,
// two of them with an integration (one JSON, one NDJSON).
//
// Every run has an id of its own (demoRunID): its spool directory
// (<dir>/spool/<id>), its Redis key prefix (hitship-demo:<id>:) and its objects'
// prefix (wallarm/<id>/) are its alone, so demos can run side by side on one
// directory and one Redis; a busy metrics port is replaced by a free one.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "demo [flags]")
	dir := fs.String("dir", "var", "where the demo keeps its S3 objects (<dir>/s3) and spools (<dir>/spool/<run>)")
	rate := fs.Float64("rate", 200, "hits per second of the synthetic feed")
	win := fs.Duration("window", time.Minute, "window size")
	grace := fs.Duration("grace", 5*time.Second, "grace")
	dur := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	listen := fs.String("listen", "127.0.0.1:9464", "metrics listener (a free port is taken if it is busy)")
	verbose := fs.Bool("v", false, "log every delivery and the group's life (text logs)")
	redisMode := fs.String("redis", demoRedisAuto, `"auto": the local Redis on 127.0.0.1:6379 if it answers, else in-process; "memory": always in-process; or the host:port of a Redis server`)
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "hitship demo: unexpected argument %q (demo -h lists the flags)\n", pos[0])
		return 2
	}
	if *redisMode != demoRedisAuto && *redisMode != demoRedisMemory {
		if _, _, err := net.SplitHostPort(*redisMode); err != nil {
			fmt.Fprintf(stderr, "hitship demo: -redis: unknown mode %q; use %q, %q or the host:port of a Redis server\n", *redisMode, demoRedisAuto, demoRedisMemory)
			return 2
		}
	}
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	level := "warn"
	if *verbose {
		level = "info"
	}
	log := newLogger(config.LogText, level, stderr)
	fail := func(what string, err error) int {
		fmt.Fprintf(stderr, "hitship demo: %s: %v\n", what, err)
		return 1
	}

	const topic, dlqTopic, eventsTopic = "hits", "hits-dead-letter", "hitship-events"
	k, err := embedded.StartKafka(embedded.KafkaOptions{Partitions: 3, Topics: []string{topic, dlqTopic, eventsTopic}})
	if err != nil {
		return fail("kafka", err)
	}
	defer k.Close()
	s3dir, err := filepath.Abs(filepath.Join(*dir, "s3"))
	if err != nil {
		return fail("dir", err)
	}
	buckets := []string{"acme-hits", "globex-hits"}
	const stagingBucket = "hitship-staging"
	st, err := embedded.StartS3(embedded.S3Options{Dir: s3dir, Buckets: append(slices.Clone(buckets), stagingBucket)})
	if err != nil {
		return fail("s3", err)
	}
	defer st.Close()
	rdb, redisWhere, closeRedis, err := demoRedis(*redisMode)
	if err != nil {
		return fail("redis", err)
	}
	defer closeRedis()
	run := demoRunID()
	prefix := demoKeyPrefix + run + ":"
	spoolRoot := filepath.Join(*dir, "spool")
	removeStaleDemoRuns(ctx, spoolRoot, rdb, log)
	// This run's Redis keys are of no use to any later run (its Kafka is gone
	// with it): delete them at the end, whatever ctx says by then.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := clearDemoState(cctx, rdb, prefix); err != nil {
			fmt.Fprintf(stderr, "hitship demo: redis: clearing this run's keys under %s: %v\n", prefix, err)
		}
	}()

	// The integrations authenticate like production ones: a key id and a secret read
	// from an environment variable (gofakes3 accepts any signature).
	if err := os.Setenv("HITSHIP_DEMO_S3_SECRET", "demo-secret-key"); err != nil {
		return fail("env", err)
	}
	cfg := config.Default()
	cfg.Kafka.Brokers = k.Addrs()
	cfg.Kafka.Topic, cfg.Kafka.DeadLetterTopic, cfg.Kafka.Group = topic, dlqTopic, "hitship-demo"
	cfg.Kafka.SessionTimeout, cfg.Kafka.RebalanceTimeout, cfg.Kafka.HeartbeatInterval = 6*time.Second, 6*time.Second, time.Second
	// A short idle timeout: with staged delivery a window is complete once every
	// partition passed it, and a quiet one passes it after idle_timeout.
	cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = *win, *grace, 2*time.Second
	cfg.Spool.Dir = filepath.Join(spoolRoot, run)
	defer os.RemoveAll(cfg.Spool.Dir) // after svc.Run released it
	cfg.S3.Endpoint, cfg.S3.PathStyle = st.URL(), true
	cfg.Log.Format = config.LogText
	// Apart from any real hitship and any other demo on the same Redis.
	cfg.Redis.KeyPrefix = prefix
	objPrefix := "wallarm/" + run + "/"
	mk := func(name string, client int64, bucket, format string) config.Integration {
		in := config.DefaultIntegration()
		in.Name, in.ClientID, in.Region, in.Bucket, in.Prefix, in.Format = name, client, embedded.S3Region, bucket, objPrefix, format
		in.Credentials.AccessKeyID, in.Credentials.SecretAccessKeyEnv = "DEMOACCESSKEY0001", "HITSHIP_DEMO_S3_SECRET"
		return in
	}
	// acme-json is in the config file; globex-ndjson is created through the
	// admin API once the replica runs, as an operator (or the console) does.
	cfg.Integrations = []config.Integration{mk("acme-json", 1, buckets[0], config.FormatJSON)}
	globex := admin.Request{Name: "globex-ndjson", ClientID: 2, Region: embedded.S3Region, Bucket: buckets[1], Prefix: objPrefix,
		Format: config.FormatNDJSON, Credentials: admin.Credentials{AccessKeyID: "DEMOACCESSKEY0001", SecretAccessKey: "demo-secret-key"}}
	// A token and a key ring of this run's, for the admin API and the secrets
	// of integrations created there.
	token, keys := demoSecret(24), demoSecret(32)
	if err := os.Setenv("HITSHIP_DEMO_ADMIN_TOKEN", token); err != nil {
		return fail("env", err)
	}
	if err := os.Setenv("HITSHIP_DEMO_KEYS", "demo:"+keys); err != nil {
		return fail("env", err)
	}
	cfg.HTTP.AdminTokenEnv, cfg.Secrets.KeysEnv, cfg.Kafka.EventsTopic = "HITSHIP_DEMO_ADMIN_TOKEN", "HITSHIP_DEMO_KEYS", eventsTopic
	// Staged delivery: the partitions' segments wait in the operator's own
	// bucket, and each window becomes one object per integration.
	staged := true
	cfg.Delivery.Staged = &staged
	cfg.Parking = config.Parking{Bucket: stagingBucket, Region: embedded.S3Region, Endpoint: st.URL(), PathStyle: true,
		Prefix: "hitship/" + run + "/"}
	// gofakes3's file backend answers a delimited listing of a prefix that has
	// no directory yet with 404 NoSuchBucket (S3 answers an empty list): the
	// segments' directory exists from the start, as a prefix does in S3.
	if err := os.MkdirAll(filepath.Join(s3dir, stagingBucket, "hitship", run, "staging", "seg"), 0o700); err != nil {
		return fail("dir", err)
	}
	cfg.Parking.Credentials.AccessKeyID, cfg.Parking.Credentials.SecretAccessKeyEnv = "DEMOACCESSKEY0002", "HITSHIP_DEMO_S3_SECRET"
	if problems := cfg.Validate(config.WithKeyTemplate(keyTemplateCheck), config.WithStagedKeyTemplate(stagedKeyTemplateCheck)); len(problems) > 0 {
		return fail("config", config.AsError(problems))
	}

	metricsNote := ""
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fail("listen", err)
		}
		metricsNote = fmt.Sprintf(" (%s is busy, another demo? this run took a free port; -listen chooses one)", *listen)
	}
	var mu sync.Mutex
	objects := 0
	delivered := func(j *delivery.Job, size int64) {
		mu.Lock()
		defer mu.Unlock()
		objects++
		late := ""
		if j.Late {
			late = " (late hits)"
		}
		bucket := buckets[0]
		if j.Target.Name == "globex-ndjson" {
			bucket = buckets[1]
		}
		fmt.Fprintf(stdout, "%s  %-14s window %s  %5d hits %7d bytes%s\n    -> %s\n",
			time.Now().Format("15:04:05"), j.Target.Name, time.UnixMilli(j.WindowStart).UTC().Format("15:04"),
			j.Records, size, late, filepath.Join(s3dir, bucket, j.Key))
	}
	svc, err := service.New(&cfg, service.Deps{Logger: log, Registry: newRegistry(), Redis: rdb, Delivered: delivered, Listener: ln})
	if err != nil {
		return fail("service", err)
	}

	fmt.Fprintf(stdout, `hitship demo, run %s
  kafka   %s (in-process kfake), topic %q, 3 partitions; bad records go to %q
  s3      %s (in-process gofakes3); objects are plain files under %s/<bucket>/%s
          one object per integration and window; segments, intents and manifests in %s/%s/%s
  redis   %s; this run's keys under %s
  spool   %s
  metrics http://%s/metrics   (also /healthz, /readyz)%s
  console http://%s/ui/   sign in with the admin token:
  admin   http://%s/v1/integrations, token %s
          HITSHIP_ADMIN_URL=http://%s HITSHIP_ADMIN_TOKEN=%s hitship integrations list
          (globex-ndjson is created there once the replica runs; events go to topic %q)
  feed    %.0f hits/s from tenants 1 (acme-json: JSON array), 2 (globex-ndjson: NDJSON) and 3 (no integration: skipped),
          with 1%% late and 0.5%% malformed records
  windows %s, grace %s: the first objects land about %s after a window ends. Ctrl-C stops.

`, run, k.Addrs()[0], topic, dlqTopic, st.URL(), s3dir, objPrefix, s3dir, stagingBucket, cfg.Parking.Prefix+"staging/", redisWhere, prefix, cfg.Spool.Dir, ln.Addr(), metricsNote,
		ln.Addr(), ln.Addr(), token, ln.Addr(), token, eventsTopic, *rate, *win, *grace, *grace)
	go demoCreate(ctx, "http://"+ln.Addr().String(), token, globex, stdout, stderr)

	feedCtx, stopFeed := context.WithCancel(ctx)
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		// Its own transport, closed at the end: the package default one keeps
		// connections and goroutines alive after the demo.
		tr := &kafka.Transport{}
		defer tr.CloseIdleConnections()
		w := &kafka.Writer{Addr: kafka.TCP(k.Addrs()...), Topic: topic, Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond, Transport: tr}
		defer w.Close()
		o := genOptions{topic: topic, rate: *rate, tenants: 3, firstID: 1, late: 0.01, malformed: 0.005, seed: uint64(time.Now().UnixNano())}
		if err := generate(feedCtx, o, w, io.Discard); err != nil {
			fmt.Fprintf(stderr, "feed: %v\n", err)
		}
	}()
	err = svc.Run(ctx)
	stopFeed()
	<-feedDone
	if err != nil {
		return fail("run", err)
	}
	fmt.Fprintf(stdout, "\nstopped cleanly; %d objects written under %s\n", objects, s3dir)
	return 0
}

// demoSecret is n random bytes, base64.
func demoSecret(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// demoCreate creates req through the admin API at base once the replica
// answers, as "hitship integrations create -f FILE" does.
func demoCreate(ctx context.Context, base, token string, req admin.Request, stdout, stderr io.Writer) {
	c := apiCall{base: base, token: token, client: &http.Client{Timeout: time.Minute}}
	for {
		a, err := c.do(ctx, http.MethodPost, "/v1/integrations", req, nil)
		switch {
		case err == nil && a.status == http.StatusCreated:
			fmt.Fprintf(stdout, "%s  created integration %s (client %d, %s) through the admin API\n", time.Now().Format("15:04:05"), req.Name, req.ClientID, req.Format)
			return
		case err == nil && a.status != http.StatusServiceUnavailable && a.status != http.StatusNotFound:
			fmt.Fprintf(stderr, "hitship demo: creating %s through the admin API: %s\n", req.Name, problem(a))
			return
		case err != nil || a.status == http.StatusServiceUnavailable:
			// The replica answered (or may have: a timeout), so the create's
			// test write may have happened: say why it is tried again.
			why := "no answer"
			if err == nil {
				why = problem(a)
			}
			fmt.Fprintf(stdout, "%s  retrying the create of %s: %s\n", time.Now().Format("15:04:05"), req.Name, why)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Modes of demo's -redis flag.
const (
	demoRedisAuto   = "auto"   // the local server if it answers, else in-process
	demoRedisMemory = "memory" // always in-process (tests: never touch a developer's Redis)
)

// demoKeyPrefix starts every demo run's Redis key prefix: hitship-demo:<run>:.
const demoKeyPrefix = "hitship-demo:"

// demoRunID names one demo run: its start time (so that runs sort) and six
// random hex digits (so that two runs started in the same second differ).
func demoRunID() string {
	return fmt.Sprintf("%s-%06x", time.Now().UTC().Format("20060102-150405"), rand.Uint32()&0xffffff)
}

// removeStaleDemoRuns removes the spool directories under root that no live
// demo holds (a run killed before it could remove its own), with their Redis
// keys. A directory whose lock a running demo holds, or one younger than a
// minute, is left alone.
func removeStaleDemoRuns(ctx context.Context, root string, rdb redis.UniversalClient, log *slog.Logger) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		// A directory of the last minute may be a demo that is still starting
		// (it creates the directory, then locks it).
		if fi, err := e.Info(); err != nil || !e.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		d := filepath.Join(root, e.Name())
		sp, err := sink.NewSpool(sink.SpoolConfig{Dir: d})
		if err != nil {
			continue // a running demo's (or unreadable): not ours to remove
		}
		_ = sp.Close()
		if err := os.RemoveAll(d); err != nil {
			log.Warn("removing a stale demo spool", "dir", d, "err", err)
		}
		if err := clearDemoState(ctx, rdb, demoKeyPrefix+e.Name()+":"); err != nil {
			log.Warn("clearing a stale demo run's Redis keys", "run", e.Name(), "err", err)
		}
	}
}

// demoRedis uses the Redis server at mode if it is an address, the local one if
// it answers and mode is auto, else an in-process one.
func demoRedis(mode string) (redis.UniversalClient, string, func(), error) {
	why := "-redis memory"
	switch mode {
	case demoRedisAuto:
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DialTimeout: 300 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if c.Ping(ctx).Err() == nil {
			return c, "127.0.0.1:6379 (the local server)", func() { _ = c.Close() }, nil
		}
		_ = c.Close()
		why = "no local Redis server answered"
	case demoRedisMemory:
	default:
		c := redis.NewClient(&redis.Options{Addr: mode, DialTimeout: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			_ = c.Close()
			return nil, "", nil, fmt.Errorf("-redis %s: %w", mode, err)
		}
		return c, mode, func() { _ = c.Close() }, nil
	}
	m, err := embedded.StartRedis()
	if err != nil {
		return nil, "", nil, err
	}
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	return c, m.Addr() + " (in-process: " + why + ")", func() { _ = c.Close(); m.Close() }, nil
}

// clearDemoState deletes the keys under prefix.
func clearDemoState(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	return rdb.Del(ctx, keys...).Err()
}
