package state

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// IsNotExecuted reports whether err, returned by RecordIdleClose,
// RecordIdleCloseClaim, RecordRoute or RecordRouteClaim, proves that Redis never ran the script: the
// connection could not be made (refused, dial failure or time-out), the
// client's pool had no connection to give, or the client is closed. Any
// other error (a time-out or a connection lost after the command was sent)
// leaves it in doubt: the script may have run. Recording the same close
// again is idempotent, so a caller in doubt records again until it knows.
//
// Only these methods give that proof: they send their script once,
// without the client's own retries, because a retry after a lost reply
// could end in a dial error although the first attempt ran.
func IsNotExecuted(err error) bool {
	if err == nil || IsFenced(err) {
		return false
	}
	if errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// noRetryCmd is a command the client sends at most once (see IsNotExecuted).
type noRetryCmd struct{ *redis.Cmd }

func (noRetryCmd) NoRetry() bool { return true }

// onceScripter runs EVAL and EVALSHA as noRetryCmds, so that redis.Script's
// NOSCRIPT fallback works as usual while no attempt is repeated.
type onceScripter struct{ redis.UniversalClient }

func (o onceScripter) run(ctx context.Context, name, script string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, script, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := noRetryCmd{redis.NewCmd(ctx, a...)}
	_ = o.UniversalClient.Process(ctx, cmd)
	return cmd.Cmd
}

func (o onceScripter) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return o.run(ctx, "eval", script, keys, args)
}

func (o onceScripter) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return o.run(ctx, "evalsha", sha1, keys, args)
}
