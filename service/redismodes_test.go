package service_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/internal/rediskey"
	"hitship/internal/testenv"
)

// TestEndToEndOnRedisTopologies: the end-to-end case (TestEndToEnd: every
// hit in exactly one object of every integration of its tenant and nowhere
// else) on each Redis a platform team runs: a master with a replica found
// through three sentinels, all with passwords (writes wait for the
// replica); a three-master Redis Cluster, where every key hitship writes is
// in the one hash slot of the prefix's tag and the other masters hold none;
// and a server that speaks TLS only, requires a client certificate and
// knows only an ACL user.
func TestEndToEndOnRedisTopologies(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const hits = 5000
	t.Run("sentinel", func(t *testing.T) {
		const pw, spw = "data-password-0001", "sentinel-password-0001"
		t.Setenv("HITSHIP_TEST_REDIS_PW", pw)
		t.Setenv("HITSHIP_TEST_SENTINEL_PW", spw)
		rs := testenv.MustRedisSentinel(t, testenv.RedisSentinelOptions{Password: pw, SentinelPassword: spw})
		endToEnd(t, hits, func(r *config.Redis) {
			r.Mode, r.Addr, r.Addrs, r.MasterName = config.RedisSentinel, "", rs.SentinelAddrs(), rs.MasterName()
			r.PasswordEnv, r.SentinelPasswordEnv = "HITSHIP_TEST_REDIS_PW", "HITSHIP_TEST_SENTINEL_PW"
		})
		master, err := rs.MasterAddr(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n := keysAt(t, master, pw, config.DefaultKeyPrefix); n == 0 {
			t.Errorf("no hitship key on the master %s", master)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		rc := testenv.MustRedisCluster(t, testenv.RedisClusterOptions{})
		endToEnd(t, hits, func(r *config.Redis) {
			r.Mode, r.Addr, r.Addrs = config.RedisCluster, "", rc.Addrs()
		})
		home, err := rc.MasterFor(t.Context(), config.ClusterKeyPrefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range rc.Addrs() {
			n := keysAt(t, a, "", "")
			switch {
			case a == home && n == 0:
				t.Errorf("no key on %s, the master of slot %d", a, rediskey.Slot(config.ClusterKeyPrefix))
			case a != home && n != 0:
				t.Errorf("%d keys on %s, outside the prefix's slot", n, a)
			}
		}
	})
	t.Run("tls and acl user", func(t *testing.T) {
		const pw = "acl-password-0001"
		t.Setenv("HITSHIP_TEST_REDIS_PW", pw)
		r := testenv.MustRedis(t, testenv.RedisOptions{TLS: &testenv.RedisTLS{RequireClientCert: true}, Users: map[string]string{"hitship": pw}})
		files := r.TLS()
		endToEnd(t, hits, func(c *config.Redis) {
			c.Addr, c.Username, c.PasswordEnv = r.Addr(), "hitship", "HITSHIP_TEST_REDIS_PW"
			c.TLS = config.TLS{Enabled: true, CAFile: files.CAFile, CertFile: files.ClientCertFile, KeyFile: files.ClientKeyFile}
		})
		if n, err := r.Client().DBSize(t.Context()).Result(); err != nil || n == 0 {
			t.Errorf("no key in the TLS server: %d %v", n, err)
		}
	})
}

// keysAt counts the keys of the Redis node at addr that start with prefix
// ("" for all).
func keysAt(t *testing.T, addr, password, prefix string) int {
	t.Helper()
	c := redisNodeClient(addr, password)
	defer c.Close()
	keys, err := c.Keys(t.Context(), prefix+"*").Result()
	if err != nil {
		t.Fatalf("KEYS on %s: %v", addr, err)
	}
	n := 0
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func redisNodeClient(addr, password string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, Password: password})
}
