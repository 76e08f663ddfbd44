package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/internal/syncbuf"
)

// TestConnectLinesSampled: a burst of connects and disconnects (a reconnect
// storm) logs at most the hot-path sampler's 20 lines per second of each
// level, not one line per connection; the metrics still count every one.
func TestConnectLinesSampled(t *testing.T) {
	var logs syncbuf.Buffer
	n := startNode(t, func(c *Config) {
		c.Logger = zerolog.New(&logs).Level(zerolog.InfoLevel)
		c.Limits.Connects = 1000
	})
	const conns = 100
	start := time.Now()
	clients := make([]*testClient, conns)
	for i := range clients {
		clients[i] = connect(t, n.Addr().String(), token(t, fmt.Sprintf("storm%d", i), time.Hour, nil))
	}
	for _, c := range clients {
		_ = c.nc.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.srv.connCount() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var connected, disconnected int
	for _, l := range logs.Lines() {
		switch {
		case strings.Contains(l, `"message":"connected"`):
			connected++
		case strings.Contains(l, `"message":"disconnected"`):
			disconnected++
			if !strings.Contains(l, `"duration_ms":`) {
				t.Errorf("disconnect line without duration_ms: %s", l)
			}
		}
	}
	// The sampler lets 20 info lines through per second, both kinds together.
	budget := 20 * (int(elapsed/time.Second) + 2)
	t.Logf("%d connects and disconnects in %v: %d connected and %d disconnected lines", conns, elapsed, connected, disconnected)
	if connected == 0 {
		t.Error("no connected line at all")
	}
	if connected+disconnected > budget || connected+disconnected >= 2*conns {
		t.Errorf("%d connection lines for %d connections in %v, want at most %d", connected+disconnected, conns, elapsed, budget)
	}
}
