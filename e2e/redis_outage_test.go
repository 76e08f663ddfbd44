package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/redistest"
)

// TestRedisRestartMidTraffic: three nodes on one redis-server with AOF,
// members of one chat spread over them, a sender sending with acks every
// 20 ms. The test SIGKILLs redis-server, keeps it down about 2 s, restarts
// it on the same port and lets the sender go on about 2 s more. No node
// exits, no client connection drops, /readyz turns 503 during the outage and
// 200 after, sends during the outage are answered UNAVAILABLE promptly, and
// every message acked ok reaches every member exactly once, in eventId order
// (js/outage.mjs).
func TestRedisRestartMidTraffic(t *testing.T) {
	const (
		outage       = 2 * time.Second
		after        = 2 * time.Second
		maxAckWait   = 1500 * time.Millisecond // an UNAVAILABLE answer is prompt
		readyTimeout = 5 * time.Second         // PROTOCOL.md: /readyz false within 5 s
	)
	srv := startRedis(t, redistest.Options{AOF: true})
	args := srv.Args("--dev", "--limit-messages", "100000", "--limit-connects", "100000")
	var killedAt, restartAt, restartedAt, readyAt time.Time
	nodes, sum := runOutage(t, args, "during the Redis outage", func(nodes []*Node) {
		srv.Kill()
		killedAt = time.Now()
		expectReadyz(t, nodes, http.StatusServiceUnavailable, killedAt, readyTimeout, "the Redis kill")
		if d := time.Until(killedAt.Add(outage)); d > 0 {
			time.Sleep(d) // the outage lasts its time while the sender goes on
		}
		restartAt = time.Now()
		srv.Restart() // same port, same directory: the AOF brings the data back
		restartedAt = time.Now()
		expectReadyz(t, nodes, http.StatusOK, restartedAt, readyTimeout, "the Redis restart (redis-server answering PING again)")
		readyAt = time.Now()
		time.Sleep(after) // the sender goes on after the outage
	})
	for i, n := range nodes {
		logs := n.Logs()
		t.Logf("node %d logged: %d \"engine unreachable; not ready\", %d \"engine reachable again; ready\", %d pub/sub resubscriptions, %d \"gap repaired\" (%s)",
			i+1, strings.Count(logs, `"engine unreachable; not ready"`), strings.Count(logs, `"engine reachable again; ready"`),
			strings.Count(logs, `"pub/sub resubscribed after reconnect; repairing chat gaps from history"`),
			strings.Count(logs, `"gap repaired"`), repairedEvents(logs))
	}
	checkOutageSends(t, sum, killedAt.UnixMilli(), restartAt.UnixMilli(), readyAt.UnixMilli(), maxAckWait)
	checkOutageDelivery(t, sum, killedAt.UnixMilli())
	t.Logf("redis-server down for %v (SIGKILL to PING answered again)", restartedAt.Sub(killedAt).Round(time.Millisecond))
}

// runOutage starts three nodes with args and js/outage.mjs across them:
// members of chat "out" spread over the nodes, a sender sending with acks
// every 20 ms. disrupt runs while the sender sends; then the script stops
// and its summary is returned. A node that exits during the run fails the
// test (what says when: "during the Redis outage").
func runOutage(t *testing.T, args []string, what string, disrupt func(nodes []*Node)) ([]*Node, outageSummary) {
	t.Helper()
	nodes := []*Node{StartNode(t, args...), StartNode(t, args...), StartNode(t, args...)}
	var tokens [][3]any
	for i := range 6 {
		name := fmt.Sprintf("m%d", i)
		tokens = append(tokens, [3]any{name, i % 3, Token(t, name)})
	}
	tokensJSON, _ := json.Marshal(tokens)
	summaryPath := filepath.Join(t.TempDir(), "summary.json")
	js := startStepScenario(t, "outage.mjs", map[string]string{
		"URL": nodes[0].URL, "ADMIN_URL": nodes[0].AdminURL, "URL2": nodes[1].URL, "URL3": nodes[2].URL,
		"TOKENS": string(tokensJSON), "SENDER_TOKEN": Token(t, "sender"), "SUMMARY": summaryPath,
	})
	js.expect(t, "SENDING", 30*time.Second)
	disrupt(nodes)
	js.send(t, "STOP")
	js.expect(t, "SUMMARY", 30*time.Second)
	raw, err := os.ReadFile(summaryPath)
	if err != nil {
		t.Fatal(err)
	}
	js.send(t, "EXIT")
	js.wait(t, 10*time.Second)
	for i, n := range nodes {
		select {
		case <-n.Exited():
			t.Errorf("node %d exited %s: %v", i+1, what, n.Err())
		default:
		}
	}
	var sum outageSummary
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatalf("summary: %v", err)
	}
	return nodes, sum
}

// ackedSend is a message a scenario's sender got an ack for: T when it
// sent, At when the ack came (ms since the epoch).
type ackedSend struct {
	TempID  string `json:"tempId"`
	EventID string `json:"eventId"`
	T       int64  `json:"t"`
	At      int64  `json:"at"`
}

type outageSummary struct {
	Settled bool        `json:"settled"`
	Acked   []ackedSend `json:"acked"`
	Failed  []struct {
		TempID string          `json:"tempId"`
		T      int64           `json:"t"`
		At     int64           `json:"at"`
		Code   string          `json:"code"`
		Error  string          `json:"error"`
		Res    json.RawMessage `json:"res"`
	} `json:"failed"`
	Clients []struct {
		Name          string            `json:"name"`
		Node          int               `json:"node"`
		Connected     bool              `json:"connected"`
		Received      []string          `json:"received"`
		Disconnects   []json.RawMessage `json:"disconnects"`
		ConnectErrors []json.RawMessage `json:"connectErrors"`
	} `json:"clients"`
}

// checkOutageSends: sends made while Redis was down were all answered
// UNAVAILABLE within maxWait; sends made once every node was ready again all
// succeeded; enough of both happened for the test to mean something.
func checkOutageSends(t *testing.T, sum outageSummary, killedMs, restartMs, readyMs int64, maxWait time.Duration) {
	t.Helper()
	var before, down, recovering, afterReady, downUnavailable int
	var maxDown int64
	var bad []string
	for _, a := range sum.Acked {
		switch {
		case a.T < killedMs:
			before++
		case a.T < restartMs:
			down++
			bad = append(bad, fmt.Sprintf("%s sent %d ms after the kill was acked ok (%s)", a.TempID, a.T-killedMs, a.EventID))
		case a.T < readyMs:
			recovering++
		default:
			afterReady++
		}
	}
	var failedAfterReady []string
	for _, f := range sum.Failed {
		switch {
		case f.T >= killedMs && f.T < restartMs:
			down++
			maxDown = max(maxDown, f.At-f.T)
			if f.Code == "UNAVAILABLE" {
				downUnavailable++
			} else {
				bad = append(bad, fmt.Sprintf("%s sent %d ms after the kill: %s %s, want UNAVAILABLE", f.TempID, f.T-killedMs, f.Error, f.Res))
			}
		case f.T >= readyMs+500:
			failedAfterReady = append(failedAfterReady, fmt.Sprintf("%s %d ms after ready: %s %s", f.TempID, f.T-readyMs, f.Error, f.Res))
		}
	}
	t.Logf("sends: %d acked before the kill, %d during the outage (%d UNAVAILABLE, slowest answer %d ms), %d acked between the restart and every node ready, %d acked after; %d failed in all",
		before, down, downUnavailable, maxDown, recovering, afterReady, len(sum.Failed))
	if down < 20 {
		t.Errorf("only %d sends during the outage; the test did not exercise it", down)
	}
	for _, b := range bad {
		t.Errorf("during the outage: %s", b)
	}
	if time.Duration(maxDown)*time.Millisecond > maxWait {
		t.Errorf("the slowest answer to a send during the outage took %d ms, want UNAVAILABLE within %v", maxDown, maxWait)
	}
	if afterReady < 20 {
		t.Errorf("only %d sends acked ok after every node was ready again, want the sender to go on for about 2 s", afterReady)
	}
	if len(failedAfterReady) > 0 {
		t.Errorf("%d sends failed more than 500 ms after every node was ready again: %v", len(failedAfterReady), failedAfterReady)
	}
}

// checkOutageDelivery: no member was disconnected, and each received every
// acked message exactly once, in eventId order. A received message nobody got
// an ok for can only be a send in flight when Redis died (performed, but its
// answer lost): there may be at most as many as such sends.
func checkOutageDelivery(t *testing.T, sum outageSummary, killedMs int64) {
	t.Helper()
	if !sum.Settled {
		t.Errorf("not every member had every acked message 10 s after the sender stopped")
	}
	inFlight := 0
	var inFlightDesc []string
	for _, f := range sum.Failed {
		if f.T < killedMs {
			inFlight++
			inFlightDesc = append(inFlightDesc, fmt.Sprintf("%s sent %d ms before the kill, answered after %d ms: %s%s", f.TempID, killedMs-f.T, f.At-f.T, f.Error, f.Res))
		}
	}
	acked := make(map[string]string, len(sum.Acked))
	for _, a := range sum.Acked {
		acked[a.EventID] = a.TempID
	}
	extras := map[string]bool{}
	for _, c := range sum.Clients {
		if len(c.Disconnects) > 0 || !c.Connected {
			t.Errorf("%s (node %d): connected=%v at the end, disconnects %s, connect errors %s", c.Name, c.Node+1, c.Connected, c.Disconnects, c.ConnectErrors)
		}
		got := map[string]bool{}
		var disorder []string
		for i, id := range c.Received {
			if got[id] {
				t.Errorf("%s (node %d): eventId %s received twice (position %d)", c.Name, c.Node+1, id, i)
			}
			got[id] = true
			if i > 0 && bus.CompareIDs(c.Received[i-1], id) >= 0 {
				disorder = append(disorder, c.Received[i-1]+" then "+id)
			}
			if _, ok := acked[id]; !ok {
				extras[id] = true
			}
		}
		if len(disorder) > 0 {
			t.Errorf("%s (node %d): received out of eventId order: %v", c.Name, c.Node+1, disorder)
		}
		var lost []string
		for _, a := range sum.Acked {
			if !got[a.EventID] {
				lost = append(lost, a.TempID+"/"+a.EventID)
			}
		}
		if len(lost) > 0 {
			t.Errorf("%s (node %d): %d of %d acked messages never received: %v\nreceived: %v", c.Name, c.Node+1, len(lost), len(sum.Acked), lost, c.Received)
		}
	}
	if len(extras) > 0 {
		ids := make([]string, 0, len(extras))
		for id := range extras {
			ids = append(ids, id)
		}
		msg := fmt.Sprintf("received messages whose send was not acked ok: %s; %d sends were in flight when Redis died (performed, their answer lost: README, limits of the guarantee): %v",
			strings.Join(ids, ", "), inFlight, inFlightDesc)
		if len(extras) > inFlight {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
	t.Logf("delivery: %d acked messages checked on %d members", len(sum.Acked), len(sum.Clients))
}

// repairedEvents lists the "events" figures of the node's "gap repaired" log lines.
func repairedEvents(logs string) string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Message string `json:"message"`
			Events  int    `json:"events"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == "gap repaired" {
			out = append(out, fmt.Sprint(l.Events))
		}
	}
	return "events per repair: [" + strings.Join(out, " ") + "]"
}

// expectReadyz waits until every node's /readyz answers want and fails the
// test for each that does not within the time given of since (when event
// happened); it logs how long each took.
func expectReadyz(t *testing.T, nodes []*Node, want int, since time.Time, within time.Duration, event string) {
	t.Helper()
	for i, d := range waitReadyz(nodes, want, since, within) {
		if d < 0 {
			t.Errorf("node %d: /readyz did not answer %d within %v of %s", i+1, want, within, event)
		} else {
			t.Logf("node %d: /readyz %d %v after %s", i+1, want, d.Round(time.Millisecond), event)
		}
	}
}

// waitReadyz polls every node's /readyz until each has answered want (or
// within passed) and returns, per node, how long after since that was
// (-1: never).
func waitReadyz(nodes []*Node, want int, since time.Time, within time.Duration) []time.Duration {
	out := make([]time.Duration, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = -1
		wg.Go(func() {
			for time.Since(since) < within {
				if readyzStatus(n.AdminURL) == want {
					out[i] = time.Since(since)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return out
}
