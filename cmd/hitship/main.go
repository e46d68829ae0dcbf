// Command hitship ships security hits from Kafka to customers' S3 buckets.
//
//	hitship run --config FILE        the service
//	hitship demo                     everything embedded, prints where objects land
//	hitship gen [flags]              produce seed-shaped hits to a Kafka topic
//	hitship check-config FILE        list every problem of a config file
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
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/service"
	"hitship/sink"
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
		return cmdRun(ctx, rest, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "gen":
		return cmdGen(ctx, rest, stdout, stderr)
	case "check-config":
		return cmdCheckConfig(rest, stdout, stderr)
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

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return "hitship " + bi.Main.Version + " (" + bi.GoVersion + ")"
	}
	return "hitship (unknown build)"
}

// loadConfig loads and validates a config file; problems are printed, one per line.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	cfg, problems, err := config.Load(path, config.WithKeyTemplate(keyTemplateCheck))
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

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: hitship check-config FILE")
		return 2
	}
	cfg, ok := loadConfig(fs.Arg(0), stderr)
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
		fs.Arg(0), len(cfg.Integrations), enabled, cfg.Kafka.Topic, cfg.Kafka.Group, cfg.Window.Size)
	return 0
}

func newLogger(format, level string, w io.Writer) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == config.LogText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	return reg
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (benchmarks)")
	if err := fs.Parse(args); err != nil {
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
	if err := svc.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	log.Info("hitship stopped cleanly")
	return 0
}

func cmdGen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o genOptions
	o.flags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "hitship gen: %v\n", err)
		return 2
	}
	w := &kafka.Writer{Addr: kafka.TCP(splitList(o.brokers)...), Topic: o.topic, Balancer: &kafka.Hash{},
		BatchTimeout: 2e6, BatchSize: 500, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := generate(ctx, o, w, stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "hitship gen: %v\n", err)
		return 1
	}
	return 0
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
