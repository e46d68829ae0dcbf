package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"hitship/service"
)

// cmdForget removes what hitship keeps for an integration that is no longer
// in the config: its runtime state, health ledger, retry entries and
// inline-failure notes, and with --purge its parked and dead objects.
func cmdForget(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("forget", "forget --config FILE [--purge] NAME")
	path := fs.String("config", "", "config file (the integration must no longer be in it)")
	purge := fs.Bool("purge", false, "also delete its parked and dead objects (else they stay for hitship redeliver)")
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if *path == "" || len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: hitship forget --config FILE [--purge] NAME")
		return 2
	}
	name := pos[0]
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 1
	}
	for _, in := range cfg.Integrations {
		if in.Name == name {
			fmt.Fprintf(stderr, "hitship forget: integration %q is still in %s: remove it from the config file and reload every replica (kill -HUP), then forget it\n", name, *path)
			return 1
		}
	}
	log := newLogger(cfg.Log.Format, "warn", stderr)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	f, closeAll, err := service.OpenForgetter(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "hitship forget: %v\n", err)
		return 1
	}
	defer closeAll()
	out, err := f.Forget(ctx, name, *purge, cliActor())
	if err != nil {
		fmt.Fprintf(stderr, "hitship forget: %v\n(nothing is lost: run the command again to finish)\n", err)
		return 1
	}
	r := out.Removed
	state := "none"
	if r.State != nil {
		state = fmt.Sprintf("%s (client %d)", r.State.State, r.State.ClientID)
	}
	fmt.Fprintf(stdout, "%s forgotten: runtime state %s, %d health ledger attempts, %d retry entries, %d inline-failure notes",
		name, state, r.LedgerAttempts, r.RetryEntries, r.InlineNotes)
	if *purge {
		fmt.Fprintf(stdout, ", %d dead letters, %d parked and %d dead objects deleted\n", r.DeadLetters, r.ParkedObjects, r.DeadObjects)
	} else {
		fmt.Fprintln(stdout)
		if k := out.Kept; k.DeadLetters+k.ParkedObjects+k.DeadObjects > 0 {
			fmt.Fprintf(stdout, "kept: %d dead letters, %d parked and %d dead objects: hitship redeliver --integration %s sends them if the integration comes back (for the same customer only); hitship forget --purge %s deletes them\n",
				k.DeadLetters, k.ParkedObjects, k.DeadObjects, name, name)
		}
	}
	fmt.Fprintf(stdout, "event %s %s by %s\n", out.Event.Type, out.Event.ID, out.Event.By)
	return 0
}
