package embedded

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an in-process Redis (miniredis) on 127.0.0.1, on a port chosen at
// start. It is what `hitship demo` uses when no Redis server is given or
// answers. Safe for concurrent use.
type Redis struct {
	m *miniredis.Miniredis
}

// StartRedis starts the server. The caller must Close it.
func StartRedis() (*Redis, error) {
	m, err := miniredis.Run()
	if err != nil {
		return nil, fmt.Errorf("embedded: start miniredis: %w", err)
	}
	return &Redis{m: m}, nil
}

// Addr returns the server's host:port.
func (r *Redis) Addr() string { return r.m.Addr() }

// Close stops the server. Safe to call more than once.
func (r *Redis) Close() { r.m.Close() }
