package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/redistest"
)

// TestNodeCrashFreesSlots: three nodes on one Redis; user u holds three
// connections, one per node (the default cap). Node A is killed with SIGKILL:
// u's connection there drops; a fourth connection for u on node B is refused
// with CONNECTION_LIMIT at first (A's presence entry still counts) and is
// accepted within 32 s of the kill (entries of a node that stops refreshing
// expire within 30 s); the other users that were on A reconnect to B and C,
// as a load balancer would send them, rejoin with lastEventId and miss
// nothing (js/crash.mjs).
func TestNodeCrashFreesSlots(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	args := srv.Args("--dev", "--limit-connects", "100000")
	a := startDrainNode(t, args...) // killed by this test (the harness's Node reports an exit as a failure)
	b := StartNode(t, args...)
	c := StartNode(t, args...)

	js := startStepScenario(t, "crash.mjs", map[string]string{
		"URL": a.URL, "ADMIN_URL": b.AdminURL, "URL2": b.URL, "URL3": c.URL,
		"TOKEN_U": Token(t, "u"), "TOKEN_V1": Token(t, "v1"), "TOKEN_V2": Token(t, "v2"), "TOKEN_W": Token(t, "w"),
	})
	js.expect(t, "READY", 20*time.Second)
	killedAt := time.Now()
	a.Signal(t, syscall.SIGKILL)
	if _, exited := a.WaitExit(5 * time.Second); !exited {
		t.Fatal("node A did not die within 5 s of SIGKILL")
	}
	js.send(t, fmt.Sprintf("KILLED %d", killedAt.UnixMilli()))
	logPresenceEntries(t, srv.Client(), srv.Prefix+":{user:u}:conns", killedAt)
	js.wait(t, 60*time.Second)
	t.Logf("scenario done %v after the kill", time.Since(killedAt).Round(time.Millisecond))
}

// logPresenceEntries logs, for each of a user's presence entries
// (presence/presence_redis.go: a sorted set scored by expiry in ms of Redis
// time), when it expires relative to the kill.
func logPresenceEntries(t *testing.T, rdb *redis.Client, key string, killedAt time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Logf("presence entries: TIME: %v", err)
		return
	}
	zs, err := rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil {
		t.Logf("presence entries: ZRANGE %s: %v", key, err)
		return
	}
	var out []string
	for _, z := range zs {
		node, _, _ := strings.Cut(fmt.Sprint(z.Member), "|")
		out = append(out, fmt.Sprintf("%s expires %d ms after the kill", node, int64(z.Score)-killedAt.UnixMilli()))
	}
	t.Logf("presence entries of %s (Redis time %d ms after the kill): %s", key, now.Sub(killedAt).Milliseconds(), strings.Join(out, "; "))
}
