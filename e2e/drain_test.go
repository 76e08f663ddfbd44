package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/anchat/realtime/internal/nodetest"
	"github.com/anchat/realtime/internal/redistest"
)

// TestDrainHandsClientsToOtherNode: node A, with 40 socket.io-client users and
// a sender connected through a load balancer, gets SIGTERM while node B (same
// Redis) is behind the balancer too. A turns not ready at once, refuses new
// upgrades with 503 DRAINING, closes its connections with 1001 "DRAINING"
// spread over its --drain-period (not all in one instant), and exits 0 within
// the period plus a margin; every client reconnects by itself, through the
// balancer, to B; and every message the sender got an ack for reached every
// client exactly once (live, or in join_chat's missed list on the rejoin with
// lastEventId).
func TestDrainHandsClientsToOtherNode(t *testing.T) {
	const (
		drainPeriod = 3 * time.Second
		nClients    = 40
	)
	srv := startRedis(t, redistest.Options{})
	args := srv.Args("--dev", "--drain-period", drainPeriod.String(),
		"--limit-messages", "100000", "--limit-connects", "100000", "--max-user-connections", "100")
	a := startDrainNode(t, args...)
	b := StartNode(t, args...) // stopped (and checked) by the harness when the test ends

	// Only A is behind the balancer while the clients connect.
	lb := startLB(t)
	backA := lb.Add(a.Addr, a.AdminURL)
	lb.WaitReady(t, backA, true, 5*time.Second)

	tokens := make([]string, nClients)
	for i := range tokens {
		tokens[i] = Token(t, fmt.Sprintf("u%d", i))
	}
	tokensJSON, _ := json.Marshal(tokens)
	summaryPath := filepath.Join(t.TempDir(), "summary.json")
	js := startStepScenario(t, "drain.mjs", map[string]string{
		"URL":          lb.URL(),
		"ADMIN_URL":    a.AdminURL,
		"TOKENS":       string(tokensJSON),
		"SENDER_TOKEN": Token(t, "sender"),
		"SUMMARY":      summaryPath,
	})
	js.expect(t, "READY", 30*time.Second)
	if st := lb.Stats(); st[0].Active != nClients+1 {
		t.Fatalf("load balancer: %d connections open to A, want %d (40 clients and the sender)", st[0].Active, nClients+1)
	}

	// B joins the balancer; the sender keeps sending through A meanwhile.
	backB := lb.Add(b.Addr, b.AdminURL)
	lb.WaitReady(t, backB, true, 5*time.Second)
	time.Sleep(300 * time.Millisecond)

	signalled := time.Now()
	a.Signal(t, syscall.SIGTERM)

	// Readiness turns false at once.
	notReadyAfter := time.Duration(-1)
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	for time.Since(signalled) < time.Second {
		if resp, err := hc.Get(a.AdminURL + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				notReadyAfter = time.Since(signalled)
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if notReadyAfter < 0 {
		t.Errorf("A's /readyz did not answer 503 within 1 s of SIGTERM")
	} else {
		t.Logf("A's /readyz answered 503 %v after SIGTERM", notReadyAfter.Round(time.Millisecond))
	}

	// A new upgrade straight to A (not through the balancer) is refused.
	status, ctype, body := upgrade(t, a.Addr)
	if status != http.StatusServiceUnavailable {
		t.Errorf("upgrade straight to A during the drain: %d %s, want 503 DRAINING", status, body)
	} else {
		var v struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error.Code != "DRAINING" || v.Error.Message == "" ||
			!strings.Contains(ctype, "application/json") {
			t.Errorf("upgrade straight to A during the drain: 503 %q %s, want a JSON body with error.code DRAINING and a message", ctype, body)
		}
	}

	// A exits 0 within the period plus a margin.
	switch exitCode, exited := a.WaitExit(time.Until(signalled.Add(drainPeriod + 5*time.Second))); {
	case !exited:
		t.Errorf("A did not exit within %v of SIGTERM", drainPeriod+5*time.Second)
	case exitCode != 0:
		t.Errorf("A exited with status %d %v after SIGTERM, want 0", exitCode, a.ExitedAt().Sub(signalled).Round(time.Millisecond))
	default:
		t.Logf("A exited 0 %v after SIGTERM (drain period %v)", a.ExitedAt().Sub(signalled).Round(time.Millisecond), drainPeriod)
	}

	js.send(t, "STOP")
	js.expect(t, "SUMMARY", 30*time.Second)
	stats := lb.Stats()
	raw, err := os.ReadFile(summaryPath)
	if err != nil {
		t.Fatal(err)
	}
	js.send(t, "EXIT")
	js.wait(t, 10*time.Second)
	var sum drainSummary
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatalf("summary: %v", err)
	}

	// Where the clients are now: all on B, none on A.
	t.Logf("load balancer: A %+v, B %+v, %d connections found no ready backend", stats[0], stats[1], lb.Refused())
	if stats[0].Active != 0 {
		t.Errorf("load balancer: %d connections still open to A after it exited", stats[0].Active)
	}
	if stats[1].Active != nClients+1 {
		t.Errorf("load balancer: %d connections open to B at the end, want %d (every client and the sender reconnected there)", stats[1].Active, nClients+1)
	}

	sigMs := signalled.UnixMilli()
	checkDrainDisconnects(t, sum, sigMs, drainPeriod)
	checkDrainMessages(t, sum, sigMs, sigMs+(drainPeriod+5*time.Second).Milliseconds())
}

// drainSummary is what drain.mjs writes (times in ms since the epoch).
type drainSummary struct {
	Settled      bool               `json:"settled"`
	FenceSeen    bool               `json:"fenceSeen"`
	Skipped      int                `json:"skipped"`
	Acked        []ackedSend        `json:"acked"`
	SendFailures []json.RawMessage  `json:"sendFailures"`
	Clients      []drainClientTrace `json:"clients"`
	Sender       drainClientTrace   `json:"sender"`
}

type drainClientTrace struct {
	Name        string  `json:"name"`
	Connected   bool    `json:"connected"`
	Joined      bool    `json:"joined"`
	Connects    []int64 `json:"connects"`
	Disconnects []struct {
		T           int64  `json:"t"`
		Reason      string `json:"reason"`
		Description string `json:"description"`
		Code        int    `json:"code"`
		CloseReason string `json:"closeReason"`
	} `json:"disconnects"`
	ConnectErrors []json.RawMessage `json:"connectErrors"`
	Joins         []struct {
		T           int64   `json:"t"`
		At          int64   `json:"at"`
		LastEventID *string `json:"lastEventId"`
		Recovered   bool    `json:"recovered"`
		Missed      int     `json:"missed"`
	} `json:"joins"`
	JoinErrors []json.RawMessage `json:"joinErrors"`
	Live       []string          `json:"live"`
	Missed     []string          `json:"missed"`
}

// checkDrainDisconnects: each client was disconnected once by the drain (1001
// "DRAINING"), the disconnects are spread over the period, and each client
// reconnected and re-joined.
func checkDrainDisconnects(t *testing.T, sum drainSummary, sigMs int64, period time.Duration) {
	t.Helper()
	if !sum.Settled {
		t.Errorf("not every socket was connected and joined again within 10 s of the drain")
	}
	var firsts, gaps []int64
	for _, c := range append(slices.Clone(sum.Clients), sum.Sender) {
		if !c.Connected || !c.Joined {
			t.Errorf("%s: connected=%v joined=%v at the end (connect errors %s, join errors %s)", c.Name, c.Connected, c.Joined, c.ConnectErrors, c.JoinErrors)
		}
		if len(c.Disconnects) == 0 {
			t.Errorf("%s: never disconnected by the drain", c.Name)
			continue
		}
		d := c.Disconnects[0]
		if len(c.Disconnects) > 1 {
			t.Errorf("%s: disconnected %d times, want once: %+v", c.Name, len(c.Disconnects), c.Disconnects)
		}
		if d.T < sigMs || d.T > sigMs+(period+time.Second).Milliseconds() {
			t.Errorf("%s: disconnected %d ms after SIGTERM, want within the drain period %v", c.Name, d.T-sigMs, period)
		}
		if d.Reason != "transport close" {
			t.Errorf("%s: disconnect reason %q, want \"transport close\" (socket.io-client then reconnects by itself)", c.Name, d.Reason)
		}
		if c.Name != "sender" {
			// The sender's socket may have unread data when A closes it (the
			// close can then reach it as a reset); the others only receive.
			if d.Code != 1001 || d.CloseReason != "DRAINING" {
				t.Errorf("%s: WebSocket closed with %d %q, want 1001 \"DRAINING\"", c.Name, d.Code, d.CloseReason)
			}
			firsts = append(firsts, d.T-sigMs)
		} else {
			t.Logf("sender: disconnected %d ms after SIGTERM (%s, close %d %q)", d.T-sigMs, d.Reason, d.Code, d.CloseReason)
		}
		var reconnect int64 = -1
		for _, at := range c.Connects {
			if at >= d.T {
				reconnect = at
				break
			}
		}
		if reconnect < 0 {
			t.Errorf("%s: did not reconnect after its disconnect", c.Name)
		} else {
			gaps = append(gaps, reconnect-d.T)
		}
		if len(c.Joins) < 2 {
			t.Errorf("%s: joined %d times, want a rejoin after the reconnect (join errors %s)", c.Name, len(c.Joins), c.JoinErrors)
		} else if j := c.Joins[len(c.Joins)-1]; j.LastEventID == nil || !j.Recovered {
			t.Errorf("%s: rejoin %+v, want lastEventId given and recovered: true", c.Name, j)
		}
	}
	if len(firsts) == 0 {
		return
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	span := firsts[len(firsts)-1] - firsts[0]
	// The most disconnects within any 200 ms window.
	most := 0
	for i := range firsts {
		n := sort.Search(len(firsts), func(k int) bool { return firsts[k] > firsts[i]+200 })
		most = max(most, n-i)
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	t.Logf("disconnects (ms after SIGTERM): first %d, last %d, span %d ms; at most %d of %d within 200 ms; reconnect after disconnect: min %d, median %d, max %d ms",
		firsts[0], firsts[len(firsts)-1], span, most, len(firsts), gaps[0], gaps[len(gaps)/2], gaps[len(gaps)-1])
	t.Logf("disconnect times (ms after SIGTERM): %v", firsts)
	if span < period.Milliseconds()/3 {
		t.Errorf("disconnects span %d ms, want at least a third of the drain period %v (spread, not all at once)", span, period)
	}
	if limit := len(firsts) * 60 / 100; most > limit {
		t.Errorf("%d of %d disconnects within one 200 ms window, want at most %d (60%%)", most, len(firsts), limit)
	}
}

// checkDrainMessages: every acked message reached every client exactly once,
// live or in the missed list of its rejoin; none arrived twice live.
func checkDrainMessages(t *testing.T, sum drainSummary, fromMs, toMs int64) {
	t.Helper()
	if !sum.FenceSeen {
		t.Errorf("the fence message sent after the drain did not reach every client within 5 s")
	}
	var during, afterReconnect int
	var reconnected int64 = -1
	if c := sum.Sender.Connects; len(c) > 1 {
		reconnected = c[len(c)-1]
	}
	for _, m := range sum.Acked {
		if m.T >= fromMs && m.T <= toMs {
			during++
		}
		if reconnected >= 0 && m.T >= reconnected {
			afterReconnect++
		}
	}
	t.Logf("sender: %d messages acked (%d of them sent during the drain, %d after the sender reconnected), %d sends failed, %d ticks skipped while not joined",
		len(sum.Acked), during, afterReconnect, len(sum.SendFailures), sum.Skipped)
	if len(sum.SendFailures) > 0 {
		t.Logf("failed sends (not acked, so not required): %s", sum.SendFailures)
	}
	if during < 10 {
		t.Errorf("only %d acked messages were sent during the drain; the test did not exercise it", during)
	}
	var totalMissed, overlap int
	for _, c := range sum.Clients {
		live := map[string]int{}
		for _, id := range c.Live {
			live[id]++
		}
		for id, n := range live {
			if n > 1 {
				t.Errorf("%s: eventId %s received %d times live", c.Name, id, n)
			}
		}
		missed := map[string]bool{}
		for _, id := range c.Missed {
			missed[id] = true
			if live[id] > 0 {
				overlap++
			}
		}
		totalMissed += len(c.Missed)
		var lost []string
		for _, m := range sum.Acked {
			if live[m.EventID] == 0 && !missed[m.EventID] {
				lost = append(lost, m.TempID+"/"+m.EventID)
			}
		}
		if len(lost) > 0 {
			t.Errorf("%s: %d acked messages never received (live %d, missed %d): %v", c.Name, len(lost), len(c.Live), len(c.Missed), lost)
		}
	}
	t.Logf("clients: %d events recovered through missed lists in all, %d of them also received live (deduplicated)", totalMissed, overlap)
}

// TestSecondSignalExitsAtOnce: a node draining over 30 s exits at once on a
// second SIGTERM. cmd/realtime exits with status 1 then (serve.go,
// handleSignals: "second signal: exiting at once"). The node closes one batch
// per 100 ms tick and stops when none is left, so a single connection would be
// closed at once and the node would exit 0 before a second signal; 50
// connections (one of them a Socket.IO client on /messenger, the others bare
// Engine.IO upgrades) keep the drain running for about 5 s.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	nodetest.Require(t)
	const conns = 50
	n := startDrainNode(t, "--drain-period", "30s", "--limit-connects", "100000")
	drainSocketIOClient(t, n.Addr, Token(t, "alice"))
	for i := 1; i < conns; i++ {
		if status, _, body := upgrade(t, n.Addr); status != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade %d: %d %s", i, status, body)
		}
	}

	first := time.Now()
	n.Signal(t, syscall.SIGTERM)
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	draining := false
	for !draining && time.Since(first) < 2*time.Second {
		if resp, err := hc.Get(n.AdminURL + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			draining = resp.StatusCode == http.StatusServiceUnavailable
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !draining {
		t.Fatal("/readyz did not turn 503 within 2 s of the first SIGTERM")
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-n.Exited():
		t.Fatalf("the node exited (%v) %v after the first SIGTERM; its drain of %d connections over 30 s should still run",
			n.Err(), n.ExitedAt().Sub(first).Round(time.Millisecond), conns)
	default:
	}

	second := time.Now()
	n.Signal(t, syscall.SIGTERM)
	code, exited := n.WaitExit(2 * time.Second)
	if !exited {
		t.Fatalf("the node did not exit within 2 s of a second SIGTERM")
	}
	t.Logf("second SIGTERM %v after the first; exit status %d %v after it", second.Sub(first).Round(time.Millisecond),
		code, n.ExitedAt().Sub(second).Round(time.Millisecond))
	if code != 1 {
		t.Errorf("exit status %d after a second signal, want 1 (cmd/realtime: exitFailure)", code)
	}
	if !strings.Contains(n.Logs(), "second signal: exiting at once") {
		t.Errorf("no \"second signal: exiting at once\" log line")
	}
}

// startDrainNode starts a node that the test signals or kills itself.
func startDrainNode(t *testing.T, args ...string) *Node {
	t.Helper()
	n := StartNode(t, args...)
	n.ExpectExit()
	return n
}

// drainSocketIOClient opens a WebSocket and connects it to /messenger with
// token, as socket.io-client would; it stays open until the test ends.
func drainSocketIOClient(t *testing.T, addr, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, br, _, err := ws.Dialer{Timeout: 5 * time.Second}.Dial(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var r io.Reader = c
	if br != nil {
		r = br
	}
	rw := struct {
		io.Reader
		io.Writer
	}{r, c}
	read := func() string {
		msg, err := wsutil.ReadServerText(rw)
		if err != nil {
			t.Fatalf("socket.io client: %v", err)
		}
		return string(msg)
	}
	if open := read(); !strings.HasPrefix(open, "0{") {
		t.Fatalf("socket.io client: first frame %q, want the Engine.IO open packet", open)
	}
	auth, _ := json.Marshal(map[string]string{"token": token})
	if err := wsutil.WriteClientText(c, append([]byte("40/messenger,"), auth...)); err != nil {
		t.Fatal(err)
	}
	if ack := read(); !strings.HasPrefix(ack, "40/messenger,{") {
		t.Fatalf("socket.io client: CONNECT answered %q, want 40/messenger,{sid}", ack)
	}
	_ = c.SetDeadline(time.Time{})
}
