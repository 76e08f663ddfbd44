package node

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/leakcheck"
)

// heldSockets counts the TCP sockets on local port port that a process
// still holds (/proc/net/tcp lists orphaned, already closed sockets with
// inode 0). Test clients dial from other ports, so on the node's port these
// are the node's own.
func heldSockets(tb testing.TB, port int) int {
	tb.Helper()
	held := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		suffix := fmt.Sprintf(":%04X", port)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !strings.HasSuffix(fields[1], suffix) {
				continue
			}
			if inode, _ := strconv.Atoi(fields[9]); inode != 0 {
				held++
			}
		}
		_ = f.Close()
	}
	return held
}

// TestRunLeavesNothingBehind stops a node while connections are in every
// state that starts a goroutine or a timer: one joined, one stuck with a
// blocked write in flight, one closing gracefully (its socket lingers
// half-closed for a second), one mid-queue with write coalescing on. When
// Run returns, every goroutine the node started has ended (runNode checks
// the tracker), the node holds no socket on its port any more (the lingering
// one used to stay open for a second after Run returned), and once the
// test's own clients are gone no goroutine is left (leakcheck).
func TestRunLeavesNothingBehind(t *testing.T) {
	leakcheck.Check(t)
	n, stop := runNode(t, func(c *Config) {
		c.WriteDelay = time.Millisecond
		c.OutboundQueueBytes = 8 << 20
		c.Limits.Messages = 1 << 20
	})
	addr := n.Addr().String()
	joined := connect(t, addr, token(t, "joined", time.Hour, nil))
	joined.emit("join_chat", map[string]string{"chatId": "c"}, true)

	dialStuckMember(t, addr, "stuck", "c")
	content := strings.Repeat("m", 4000)
	for range 300 { // 1.2 MB: more than the stuck socket takes
		msg := newMessage{ChatID: "c", SenderID: "server", Content: content, MessageType: "TEXT", CreatedAt: timestamp(time.Now())}
		if _, err := n.srv.appendMessage(msg, "server"); err != nil {
			t.Fatal(err)
		}
		joined.waitEvent("new_message", 10*time.Second)
	}

	closing := connect(t, addr, token(t, "closing", time.Hour, nil))
	if err := wsutil.WriteClientMessage(closing.nc, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "")); err != nil {
		t.Fatal(err)
	}
	<-closing.done // the node answered and shut its write side; the socket lingers

	stop()
	if held := heldSockets(t, n.Addr().(*net.TCPAddr).Port); held != 0 {
		t.Fatalf("the node still holds %d sockets on its port after Run returned", held)
	}
}

// TestGoroutinesTracker: Go and AfterFunc are counted until they end, in
// the group that started them and in its parent; waitFor honours its bound;
// a group's wait waits for its own goroutines only; fireTimers runs pending
// timers now and later ones at once.
func TestGoroutinesTracker(t *testing.T) {
	g := newGoroutines()
	sub := g.group()
	release := make(chan struct{})
	g.Go(func() { <-release })
	fired := make(chan string, 3)
	sub.AfterFunc(time.Hour, func() { fired <- "pending" })
	if n, s := g.count(), sub.count(); n != 2 || s != 1 {
		t.Fatalf("count %d and %d in the group, want 2 (a goroutine and a pending timer) and 1", n, s)
	}
	// g's goroutine holds it busy until release, so nothing starts on g
	// from none left while this waiter, timed out, still waits.
	if g.waitFor(10 * time.Millisecond) {
		t.Fatal("waitFor returned true with goroutines running")
	}
	sub.fireTimers()
	if got := <-fired; got != "pending" {
		t.Fatal(got)
	}
	sub.AfterFunc(time.Hour, func() { fired <- "late" })
	if got := <-fired; got != "late" {
		t.Fatal(got)
	}
	if !sub.waitFor(5 * time.Second) {
		t.Fatalf("timers not done: count %d in the group", sub.count())
	}
	if n := g.count(); n != 1 {
		t.Fatalf("count %d with the goroutine still running, want 1", n)
	}
	close(release)
	if !g.waitFor(5*time.Second) || g.count() != 0 {
		t.Fatalf("count %d after everything ended", g.count())
	}
	g.wait() // returns at once: none is left
}

// TestRunLeavesEnginesToTheirOwner: the engines belong to whoever built
// them; Run used to close the bus and presence, which the caller closed
// again (and could not use after Run, to hand over or clean up).
func TestRunLeavesEnginesToTheirOwner(t *testing.T) {
	leakcheck.Check(t)
	eng := memoryEngines()
	n, err := New(Config{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", NodeID: "n", JWT: JWTConfig{Secret: []byte(testSecret)},
		DrainPeriod: time.Millisecond, StatsInterval: -1, Engines: eng,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	<-n.Ready()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := eng.Bus.Publish(context.Background(), bus.User("u"), "e", []byte(`{}`)); err != nil {
		t.Errorf("bus after Run returned: %v", err)
	}
	if ok, err := eng.Presence.Acquire(context.Background(), "u", "c", 1); !ok || err != nil {
		t.Errorf("presence after Run returned: ok=%v err=%v", ok, err)
	}
	_ = eng.Bus.Close()
	_ = eng.Presence.Close()
}
