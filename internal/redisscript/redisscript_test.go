package redisscript_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/redisscript"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/limits"
)

// failedEvalSHA is INFO commandstats' failed_calls of EVALSHA.
func failedEvalSHA(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cmdstat_evalsha:.*failed_calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// work runs a send and a rate-limit check, each one script.
func work(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Append(ctx, "c1", bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	l, err := limits.NewRedis(c, limits.RedisConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Allow(ctx, "msg:u", limits.PerMinute(3)); err != nil {
		t.Fatal(err)
	}
}

// TestFirstCallsFailWithoutLoadAll shows the cause: on a fresh Redis the
// first EVALSHA of each script fails (NOSCRIPT).
func TestFirstCallsFailWithoutLoadAll(t *testing.T) {
	c := redistest.Client(t)
	work(t, c)
	if n := failedEvalSHA(t, c); n != 2 {
		t.Fatalf("failed EVALSHA = %d, want 2 (one per script on first use)", n)
	}
}

func TestLoadAllAvoidsNOSCRIPT(t *testing.T) {
	c := redistest.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := redisscript.LoadAll(ctx, c); err != nil {
		t.Fatal(err)
	}
	work(t, c)
	if n := failedEvalSHA(t, c); n != 0 {
		t.Fatalf("failed EVALSHA after LoadAll = %d, want 0", n)
	}
}

// TestOwnerNamesTheRegisteringPackage: a script is known by its SHA-1 and its
// source under the package that called New (bus and limits are imported
// here); anything else is unknown.
func TestOwnerNamesTheRegisteringPackage(t *testing.T) {
	s := redisscript.New("return 1")
	for key, want := range map[string]string{s.Hash(): "redisscript_test", "return 1": "redisscript_test", "0123": ""} {
		if got := redisscript.Owner(key); got != want {
			t.Errorf("Owner(%q) = %q, want %q", key, got, want)
		}
	}
	var busScripts, limitScripts int
	for _, o := range redisscript.Owners() {
		switch o {
		case "bus":
			busScripts++
		case "limits":
			limitScripts++
		}
	}
	if busScripts == 0 || limitScripts == 0 {
		t.Errorf("owners %v: want the bus and limits scripts", redisscript.Owners())
	}
}
