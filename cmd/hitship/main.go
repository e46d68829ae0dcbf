// Command hitship ships security hits from Kafka to customers' S3 buckets.
//
//	hitship run --config FILE        the service
//	hitship demo                     everything embedded, prints where objects land
//	hitship gen [flags]              produce seed-shaped hits to a Kafka topic
//	hitship check-config FILE        list every problem of a config file
//	hitship forget --config FILE NAME   forget an integration that left the config
//	hitship enable|disable|status    integrations' runtime state (as the admin API)
//	hitship version
//
// main parses flags and config, wires the service and shuts it down; nothing else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/integrations"
	"hitship/internal/buildinfo"
	"hitship/internal/kafkaconn"
	"hitship/internal/logx"
	"hitship/internal/redisconn"
	"hitship/internal/rediskey"
	"hitship/service"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: hitship <command> [flags]

commands:
  run --config FILE     run the service
  demo                  run everything embedded (Kafka, S3, Redis, a hit feed)
  gen [flags]           produce seed-shaped hits to a Kafka topic (gen -h)
  check-config FILE     validate a config file and list every problem
  external-id --client ID --config FILE
                        the external ID a customer's role must require, and the account to trust
  test-integration --config FILE NAME
                        write the two sample hits to an integration's bucket; say what is wrong
  redeliver --config FILE [--integration NAME] [--since T]
                        queue dead-lettered objects again
  forget --config FILE [--purge] NAME
                        remove what hitship keeps for an integration no longer in the config
  enable --config FILE NAME
                        enable an integration again at runtime (as the admin API does)
  disable --config FILE [--reason R] NAME
                        disable an integration at runtime: its records are skipped
  status --config FILE [NAME...]
                        integrations' config and runtime state and 12-hour health
  integrations [--url URL] list|show|create|apply|delete|enable|disable|test|onboarding
                        manage integrations through a replica's admin API (integrations -h)
  version               print the build
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "gen":
		return cmdGen(ctx, rest, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(rest, stdout, stderr)
	case "external-id":
		return cmdExternalID(rest, stdout, stderr)
	case "redeliver":
		return cmdRedeliver(ctx, rest, stdout, stderr)
	case "forget":
		return cmdForget(ctx, rest, stdout, stderr)
	case "test-integration":
		return cmdTestIntegration(ctx, rest, stdout, stderr)
	case "enable", "disable":
		return cmdSetState(ctx, cmd, rest, stdout, stderr)
	case "status":
		return cmdStatus(ctx, rest, stdout, stderr)
	case "integrations":
		return cmdIntegrations(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hitship: unknown command %q\n\n%s", cmd, usage)
	return 2
}

// version is the build's one-line description (internal/buildinfo).
func version() string { return buildinfo.Get().String() }

// loadConfig loads and validates a config file; problems are printed, one per line.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	cfg, problems, err := config.Load(path, config.WithKeyTemplate(keyTemplateCheck), config.WithStagedKeyTemplate(stagedKeyTemplateCheck))
	if err != nil {
		fmt.Fprintf(stderr, "hitship: %v\n", err)
		return nil, false
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", path, len(problems))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		return nil, false
	}
	return cfg, true
}

func keyTemplateCheck(s string) error {
	_, err := sink.ParseKeyTemplate(s)
	return err
}

func stagedKeyTemplateCheck(s string) error {
	_, err := sink.ParseStagedKeyTemplate(s)
	return err
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", "check-config FILE")
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: hitship check-config FILE")
		return 2
	}
	cfg, ok := loadConfig(pos[0], stderr)
	if !ok {
		return 1
	}
	enabled := 0
	for _, in := range cfg.Integrations {
		if in.Enabled {
			enabled++
		}
	}
	fmt.Fprintf(stdout, "%s: ok (%d integrations, %d enabled; topic %s, group %s, window %s)\n",
		pos[0], len(cfg.Integrations), enabled, cfg.Kafka.Topic, cfg.Kafka.Group, cfg.Window.Size)
	fmt.Fprintf(stdout, "redis: %s, keys under %q", redisconn.Addr(cfg.Redis), cfg.Redis.KeyPrefix)
	if cfg.Redis.Mode == config.RedisCluster {
		// Validate refused a prefix without a hash tag: every key is here.
		fmt.Fprintf(stdout, ", all in hash slot %d", rediskey.Slot(cfg.Redis.KeyPrefix))
	}
	fmt.Fprintln(stdout)
	return 0
}

// repeatInterval is how often a repeating warning is logged (logx.RepeatLimit).
const repeatInterval = 30 * time.Second

// newLogger returns the process's logger: JSON or text on w, with repeated
// warnings held back (the first, then one per repeatInterval with a count).
// It also becomes the logger of everything that does not take one: slog's
// default (and through it the standard log package), go-redis, and the AWS
// SDK's default configuration (s3sink.DefaultBaseCredentials), so that every line
// on w has the chosen format.
func newLogger(format, level string, w io.Writer) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == config.LogText {
		h = slog.NewTextHandler(w, opts)
	}
	log := slog.New(logx.RepeatLimit(h, repeatInterval))
	slog.SetDefault(log)
	redis.SetLogger(logx.Redis(log))
	return log
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	return reg
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "run --config FILE")
	path := fs.String("config", "", "config file (YAML)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (benchmarks)")
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "hitship run: unexpected argument %q\nusage: hitship run --config FILE\n", pos[0])
		return 2
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "hitship: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "hitship: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *path == "" {
		fmt.Fprintln(stderr, "usage: hitship run --config FILE")
		return 2
	}
	// SIGHUP is taken before the config is read: one that arrives while the
	// service starts (an operator or a rolling config change) is kept and
	// applied once it runs, instead of ending the process (Go's default for
	// an unhandled SIGHUP) or being lost after a read of the older file.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	log := newLogger(cfg.Log.Format, cfg.Log.Level, stderr)
	setMemoryLimit(cfg, log)
	svc, err := service.New(cfg, service.Deps{Logger: log, Registry: newRegistry()})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	log.Info("hitship starting", "version", version(), "topic", cfg.Kafka.Topic, "group", cfg.Kafka.Group,
		"integrations", len(cfg.Integrations), "listen", cfg.HTTP.Listen)
	go reloadOnHUP(ctx, hup, *path, svc, log)
	if err := svc.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	log.Info("hitship stopped cleanly")
	return 0
}

func cmdGen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("gen", "gen [flags]")
	var o genOptions
	o.flags(fs)
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "hitship gen: unexpected argument %q (gen -h lists the flags)\n", pos[0])
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "hitship gen: %v\n", err)
		return 2
	}
	w := &kafka.Writer{Addr: kafka.TCP(splitList(o.brokers)...), Topic: o.topic, Balancer: &kafka.Hash{},
		BatchTimeout: 2e6, BatchSize: 500, RequiredAcks: kafka.RequireAll}
	if o.config != "" {
		tr, code, ok := genFromConfig(ctx, fs, &o, w, stderr)
		if !ok {
			return code
		}
		defer tr.CloseIdleConnections()
	}
	defer w.Close()
	if err := generate(ctx, o, w, stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "hitship gen: %v\n", err)
		return 1
	}
	return 0
}

// genFromConfig points gen's writer at the brokers of the config file's kafka
// section, with its SASL, TLS and client id (kafkaconn, as the service
// connects), and the topic unless -brokers or -topic were given. It checks
// the connection first, so that settings the broker refuses are reported in
// plain words naming the key to fix.
func genFromConfig(ctx context.Context, fs *flag.FlagSet, o *genOptions, w *kafka.Writer, stderr io.Writer) (*kafka.Transport, int, bool) {
	cfg, ok := loadConfig(o.config, stderr)
	if !ok {
		return nil, 1, false
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["brokers"] {
		o.brokers = strings.Join(cfg.Kafka.Brokers, ",")
	}
	if !given["topic"] {
		o.topic = cfg.Kafka.Topic
	}
	k := cfg.Kafka
	k.Brokers = splitList(o.brokers)
	mech, tc, err := kafkaconn.Auth(k)
	if err != nil {
		fmt.Fprintf(stderr, "hitship gen: %v\n", err)
		return nil, 1, false
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := kafkaconn.Check(cctx, k, kafkaconn.Dialer(k, mech, tc)); kafkaconn.IsMisconfigured(err) {
		fmt.Fprintf(stderr, "hitship gen: cannot connect to Kafka: %v\n", err)
		return nil, 1, false
	}
	tr := &kafka.Transport{ClientID: k.ClientID, SASL: mech, TLS: tc}
	w.Addr, w.Topic, w.Transport = kafka.TCP(k.Brokers...), o.topic, tr
	return tr, 0, true
}

// setMemoryLimit gives the Go runtime a soft memory limit of the spool's memory
// budget plus 64 MiB for everything else (fetch buffers, clients), unless the
// operator set GOMEMLIMIT. Without it the heap may grow to twice the live data
// between collections; with it RSS stays near what the budget promises.
func setMemoryLimit(cfg *config.Config, log *slog.Logger) {
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return
	}
	limit := int64(cfg.Spool.MemoryBytes) + 64<<20
	debug.SetMemoryLimit(limit)
	log.Debug("soft memory limit set", "bytes", limit)
}

// reloadOnHUP reloads the config file on every SIGHUP received on hup until
// ctx ends. A config with problems is refused whole: they are logged and the
// running one stays.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, path string, svc *service.Service, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		cfg, problems, err := config.Load(path, config.WithKeyTemplate(keyTemplateCheck), config.WithStagedKeyTemplate(stagedKeyTemplateCheck))
		if err == nil && len(problems) > 0 {
			err = config.AsError(problems)
		}
		if err == nil {
			err = svc.Reload(cfg)
		}
		if err != nil {
			log.Error("SIGHUP: config not reloaded; the running config stays", "err", err)
		}
	}
}

func cmdExternalID(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("external-id", "external-id --client ID --config FILE")
	client := fs.Int64("client", 0, "the customer's client id")
	path := fs.String("config", "", "config file (its external_id section holds the server secret)")
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if *client <= 0 || *path == "" || len(pos) > 0 {
		fmt.Fprintln(stderr, "usage: hitship external-id --client ID --config FILE")
		return 2
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	secret := cfg.ExternalID.Secret()
	if secret == "" {
		fmt.Fprintln(stderr, "hitship external-id: external_id.secret_env or external_id.secret_file must name the server secret")
		return 1
	}
	fmt.Fprintf(stdout, "client %d\nexternal ID: %s\n", *client, s3sink.ExternalID([]byte(secret), *client))
	if a := cfg.ExternalID.AccountID; a != "" {
		fmt.Fprintf(stdout, "trust: arn:aws:iam::%s:root (the role's trust policy allows this account with the condition sts:ExternalId equal to the ID above)\n", a)
	} else {
		fmt.Fprintln(stdout, "trust: the AWS account hitship runs as (set external_id.account_id to print it here)")
	}
	return 0
}

func cmdTestIntegration(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test-integration", "test-integration --config FILE NAME")
	path := fs.String("config", "", "config file")
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if *path == "" || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: hitship test-integration --config FILE NAME")
		return 2
	}
	name := pos[0]
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	ans, err := integrations.Test(ctx, cfg, name, nil)
	if err != nil {
		fmt.Fprintf(stderr, "hitship test-integration: %v\n", err)
		return 1
	}
	if ans.OK {
		fmt.Fprintf(stdout, "%s: ok: %s\n", name, ans.Message)
		return 0
	}
	fmt.Fprintf(stdout, "%s: failed (%s): %s\n", name, ans.Problem, ans.Message)
	if ans.Fix != "" {
		fmt.Fprintf(stdout, "fix: %s\n", ans.Fix)
	}
	return 1
}
