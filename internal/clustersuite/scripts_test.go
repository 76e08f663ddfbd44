package clustersuite

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redisscript"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/limits"
)

// TestLoadAllOnCluster: redisscript.LoadAll loads the scripts on every node,
// replicas included (so a promoted replica has them too), and no EVALSHA then
// meets NOSCRIPT.
func TestLoadAllOnCluster(t *testing.T) {
	cl := redistest.StartRealCluster(t, redistest.ClusterOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cc := cl.Client()
	if err := redisscript.LoadAll(ctx, cc); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../../bus/lua/append.lua")
	if err != nil {
		t.Fatal(err)
	}
	// As bus loads it: the limiter's window rule, then the append script.
	sum := sha1.Sum(append([]byte(limits.WindowRuleLua), src...))
	hash := hex.EncodeToString(sum[:])
	for _, s := range cl.Nodes {
		ok := must.Get[[]bool](t)(s.Client().ScriptExists(ctx, hash).Result())
		if !ok[0] {
			t.Errorf("node %s lacks the append script", s.Addr())
		}
	}
	b := newBroker(t, cc, bus.RedisConfig{})
	for i := range 20 {
		if _, err := b.Append(ctx, "c"+strconv.Itoa(i), bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	re := regexp.MustCompile(`cmdstat_evalsha:calls=(\d+),.*failed_calls=(\d+)`)
	calls := 0
	for _, s := range cl.Nodes {
		info := must.Get[string](t)(s.Client().Info(ctx, "commandstats").Result())
		if m := re.FindStringSubmatch(info); m != nil {
			n, _ := strconv.Atoi(m[1])
			calls += n
			if m[2] != "0" {
				t.Errorf("node %s: %s failed EVALSHA", s.Addr(), m[2])
			}
		}
	}
	if calls != 20 {
		t.Errorf("%d EVALSHA calls in the cluster, want 20", calls)
	}
}
