package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"hitship/integrations/registry"
	"hitship/service"
)

// cliActor is the "by" of a change made from the command line:
// cli:<user>@<host>, as the admin API's is admin-api@<address>.
func cliActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if name == "" {
		name = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return "cli:" + name + "@" + host
}

// control loads the config at path and opens a service.Control on its Redis
// and integrations topic (service.OpenRegistry). The returned func closes
// them.
func control(ctx context.Context, path string, stderr io.Writer) (*service.Control, func(), bool) {
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return nil, nil, false
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	reg, rdb, closeAll, err := service.OpenRegistry(octx, cfg, newLogger(cfg.Log.Format, "warn", stderr))
	if err != nil {
		fmt.Fprintf(stderr, "hitship: %v\n", err)
		return nil, nil, false
	}
	c, err := service.NewControl(cfg, reg, rdb)
	if err != nil {
		closeAll()
		fmt.Fprintf(stderr, "hitship: %v\n", err)
		return nil, nil, false
	}
	return c, closeAll, true
}

// cmdSetState is `hitship enable` and `hitship disable`: the runtime state of
// one integration, changed in Redis as the admin API changes it.
func cmdSetState(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	usage := cmd + " --config FILE NAME"
	if cmd == "disable" {
		usage = "disable --config FILE [--reason R] NAME"
	}
	fs := newFlagSet(cmd, usage)
	path := fs.String("config", "", "config file (its redis section says where the state lives)")
	reason := fs.String("reason", "", "why (disable only; shown by status, the admin API and the events stream)")
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if *path == "" || len(pos) != 1 || (cmd == "enable" && *reason != "") {
		fmt.Fprintf(stderr, "usage: hitship %s\n", usage)
		return 2
	}
	name := pos[0]
	c, closeRedis, ok := control(ctx, *path, stderr)
	if !ok {
		return 1
	}
	defer closeRedis()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var ch service.Change
	var err error
	if cmd == "enable" {
		ch, err = c.Enable(ctx, name, cliActor())
	} else {
		r := strings.TrimSpace(*reason)
		if r == "" {
			r = "disabled with hitship disable"
		}
		ch, err = c.Disable(ctx, name, r, cliActor())
	}
	if err != nil {
		fmt.Fprintf(stderr, "hitship %s: %v\n", cmd, err)
		return 1
	}
	if !ch.Changed {
		fmt.Fprintf(stdout, "%s: already %s; nothing changed (%s)\n", name, ch.Status.State, describe(ch.Status))
		return 0
	}
	fmt.Fprintf(stdout, "%s: %s (%s); every replica applies it within its 2-second poll\n", name, ch.Status.State, describe(ch.Status))
	if cmd == "enable" {
		fmt.Fprintf(stdout, "%s: health ledger reset; %d parked entries due now\n", name, ch.Woken)
	}
	return 0
}

// describe is the reason, time and author of a state.
func describe(st registry.Status) string {
	var parts []string
	if st.Reason != "" {
		parts = append(parts, "reason: "+st.Reason)
	}
	if !st.Since.IsZero() {
		parts = append(parts, "since "+st.Since.UTC().Format(time.RFC3339))
	}
	if st.By != "" {
		parts = append(parts, "by "+st.By)
	}
	if len(parts) == 0 {
		return "never changed"
	}
	return strings.Join(parts, ", ")
}

// cmdStatus is `hitship status`: every configured integration (or the named
// ones) with its config-file and runtime state and its 12-hour ledger.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = "status --config FILE [NAME...]"
	fs := newFlagSet("status", usage)
	path := fs.String("config", "", "config file")
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if *path == "" {
		fmt.Fprintf(stderr, "usage: hitship %s\n", usage)
		return 2
	}
	c, closeRedis, ok := control(ctx, *path, stderr)
	if !ok {
		return 1
	}
	defer closeRedis()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sts, err := c.Status(ctx, pos...)
	if err != nil {
		fmt.Fprintf(stderr, "hitship status: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INTEGRATION\tCONFIG\tSTATE\tATTEMPTS 12H\tFAILURES 12H\tDETAILS")
	for _, st := range sts {
		conf := "enabled"
		if !st.ConfigEnabled {
			conf = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", st.Name, conf, st.State, st.Attempts, st.Failures, describe(st.Status))
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}
