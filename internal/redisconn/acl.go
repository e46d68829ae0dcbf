package redisconn

import (
	"slices"
	"strings"
)

// ACLCommands are the Redis commands hitship sends, for a least-privilege
// ACL user (README, "Redis in production"): the go-redis calls of every
// package, the commands its Lua scripts call (Redis checks those against the
// user too), WAIT and INFO of the acknowledged writes above, and what go-redis
// sends when it opens a connection (HELLO, AUTH). SCAN is for
// `hitship forget` and the retry queue's scan of the parking bucket, SELECT
// for a redis.db other than 0. TestACLCoversScripts checks the scripts'
// commands against this list; bench/redis-sizing runs hitship as a user
// with only these (ACLRule) and fails on any denial in ACL LOG.
//
// go-redis also sends CLIENT SETINFO (the library's name and version) on
// every new connection and ignores its error: Redis 7.2 and later know it,
// and without +client|setinfo log a denial in ACL LOG per connection
// (harmless); Redis before 7.2 refuses that rule (an unknown subcommand).
// ACLSetInfo is that rule for 7.2 and later.
var ACLCommands = []string{
	// connection
	"auth", "hello", "ping", "select",
	// acknowledged writes (WAIT after each write, INFO replication in auto mode)
	"wait", "info",
	// scripts and transactions
	"eval", "evalsha", "multi", "exec",
	// strings and keys
	"get", "set", "getex", "incr", "del", "exists", "pexpire", "scan",
	// hashes
	"hget", "hgetall", "hmget", "hset", "hsetnx", "hdel", "hincrby", "hexists", "hscan",
	// sorted sets
	"zadd", "zrem", "zcard", "zcount", "zscore", "zrangebyscore", "zrangebylex", "zrevrangebylex", "zremrangebylex",
	// the events stream
	"xadd", "xrange", "xrevrange",
}

// ACLSetInfo is the rule that lets go-redis name itself on Redis 7.2 and
// later (see ACLCommands).
const ACLSetInfo = "+client|setinfo"

// ACLClusterCommands are what go-redis's cluster client sends on top of
// ACLCommands (redis.mode cluster): the slot map and the command table it
// routes by. From go-redis v9's source (osscluster.go); not run here.
var ACLClusterCommands = []string{"cluster|slots", "cluster|shards", "command"}

// ACLRule is the ACL SETUSER rule (without the user name and password) that
// allows exactly ACLCommands on the keys under prefix and no Pub/Sub
// channel; cluster adds ACLClusterCommands. A hash tag in prefix ("{hitship}:")
// is written as it is: '{' and '}' are not glob characters.
func ACLRule(prefix string, cluster bool) string {
	cmds := slices.Clone(ACLCommands)
	if cluster {
		cmds = append(cmds, ACLClusterCommands...)
	}
	var b strings.Builder
	b.WriteString("resetkeys ~" + globEscape(prefix) + "* resetchannels -@all")
	for _, c := range cmds {
		b.WriteString(" +" + c)
	}
	return b.String()
}

// globEscape escapes the glob characters of Redis key patterns.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
