package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/redistest"
)

// TestThreeNodesEveryEvent: three nodes on one Redis, users spread over them
// in one chat. Messages, edits, deletes, typing (with its expiry) and
// reactions cross nodes and every member sees each event exactly once; a
// user with three connections on three nodes is refused a fourth on any node;
// one user's messages through two nodes share one rate budget; lastEventId
// recovery on a different node returns exactly the missed events in order
// (js/cluster3.mjs).
func TestThreeNodesEveryEvent(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	runCluster3(t, srv.Args(cluster3Flags...))
}

// cluster3Flags are the flags js/cluster3.mjs expects of its nodes (typing
// expiry, a rate budget of 5 messages a minute) besides the engines'.
var cluster3Flags = []string{"--dev", "--typing-expiry", "1s", "--limit-messages", "5", "--limit-window", "60s", "--limit-connects", "100000"}

// runCluster3 starts three nodes with args and runs js/cluster3.mjs across them.
func runCluster3(t *testing.T, args []string) {
	t.Helper()
	n1 := StartNode(t, args...)
	n2 := StartNode(t, args...)
	n3 := StartNode(t, args...)
	n1.RunJS(t, "cluster3.mjs", map[string]string{
		"URL2":        n2.URL,
		"URL3":        n3.URL,
		"TOKEN_ALICE": Token(t, "alice", func(c jwt.MapClaims) { c["name"] = "Alice" }),
		"TOKEN_BOB":   Token(t, "bob"),
		"TOKEN_CAROL": Token(t, "carol"),
		"TOKEN_ERIN":  Token(t, "erin"),
		"TOKEN_DAVE":  Token(t, "dave"),
		"TOKEN_RL":    Token(t, "rl"),
	})
}

// TestInterestBasedSubscription: a node subscribes to a chat's channel only
// while it has local members there. Chat "ix" has members on nodes A and B
// only; C has users in another chat. Redis counts exactly two subscribers of
// the chat's channel, C's bus receives none of the chat's flood while A's
// receives all of it, and when B's last member leaves the count drops to one
// (js/cluster3_interest.mjs).
func TestInterestBasedSubscription(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := srv.Prefix
	args := srv.Args("--dev", "--limit-messages", "100000", "--limit-connects", "100000")
	a := StartNode(t, args...)
	b := StartNode(t, args...)
	c := StartNode(t, args...)
	rdb := srv.Client()
	chanX := prefix + ":{chat:ix}" // bus/broker_redis.go: <prefix>:{chat:<id>}
	chanY := prefix + ":{chat:iy}"

	js := startStepScenario(t, "cluster3_interest.mjs", map[string]string{
		"URL": a.URL, "ADMIN_URL": a.AdminURL, "URL2": b.URL, "URL3": c.URL,
		"TOKEN_X1": Token(t, "x1"), "TOKEN_X2": Token(t, "x2"),
		"TOKEN_Y1": Token(t, "y1"), "TOKEN_Y3": Token(t, "y3"),
	})
	js.expect(t, "JOINED", 20*time.Second)

	// join_chat returns after the node's SUBSCRIBE was confirmed.
	if got := pubsubNumSub(t, rdb, chanX); got != 2 {
		t.Errorf("PUBSUB NUMSUB %s = %d after members joined on A and B, want 2", chanX, got)
	}
	if got := pubsubNumSub(t, rdb, chanY); got != 2 {
		t.Errorf("PUBSUB NUMSUB %s = %d after members joined on A and C, want 2", chanY, got)
	}
	const flood = 100
	metric := `realtime_bus_deliveries_total{event="new_message"}`
	a0, b0, c0 := scrapeMetric(t, a, metric), scrapeMetric(t, b, metric), scrapeMetric(t, c, metric)
	js.send(t, fmt.Sprintf("FLOOD %d", flood))
	js.expect(t, "FLOODED", 25*time.Second)
	a1, b1, c1 := scrapeMetric(t, a, metric), scrapeMetric(t, b, metric), scrapeMetric(t, c, metric)
	t.Logf("%s: A %v -> %v, B %v -> %v, C %v -> %v (%d messages to ix, then 1 to iy)", metric, a0, a1, b0, b1, c0, c1, flood)
	if a1-a0 != flood+1 {
		t.Errorf("A's bus delivered %v new_message events, want %d (the flood of ix and the iy message)", a1-a0, flood+1)
	}
	if b1-b0 != flood {
		t.Errorf("B's bus delivered %v new_message events, want %d (the flood of ix)", b1-b0, flood)
	}
	if c1-c0 != 1 {
		t.Errorf("C's bus delivered %v new_message events, want 1 (only the iy message: C has no member of ix)", c1-c0)
	}

	js.send(t, "LEAVE")
	js.expect(t, "LEFT", 10*time.Second)
	// The UNSUBSCRIBE is not awaited by leave_chat: poll.
	deadline := time.Now().Add(5 * time.Second)
	got := pubsubNumSub(t, rdb, chanX)
	for got != 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		got = pubsubNumSub(t, rdb, chanX)
	}
	if got != 1 {
		t.Errorf("PUBSUB NUMSUB %s = %d 5 s after the last member on B left, want 1", chanX, got)
	}
	if got := pubsubNumSub(t, rdb, chanY); got != 2 {
		t.Errorf("PUBSUB NUMSUB %s = %d, want still 2", chanY, got)
	}
	js.send(t, "EXIT")
	js.wait(t, 10*time.Second)
}

// pubsubNumSub is the subscriber count Redis reports for one channel.
func pubsubNumSub(t *testing.T, rdb *redis.Client, channel string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := rdb.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		t.Fatalf("PUBSUB NUMSUB %s: %v", channel, err)
	}
	return m[channel]
}

// scrapeMetric reads one sample (name with its labels, exactly as exposed)
// from the node's /metrics; an absent sample is 0.
func scrapeMetric(t *testing.T, n *Node, sample string) float64 {
	t.Helper()
	v, err := fetchMetric(n.AdminURL, sample)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fetchMetric(adminURL, sample string) (float64, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(adminURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, nil
}

// readyzStatus is the HTTP status of the node's /readyz (0 when it does not answer).
func readyzStatus(adminURL string) int {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	resp, err := hc.Get(adminURL + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
