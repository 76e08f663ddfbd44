package node

import (
	"bufio"
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/anchat/realtime/internal/leakcheck"
)

// dialStuckMember connects user with a tiny receive buffer that is never
// read after join_chat: a member that lets its outbound queue fill.
func dialStuckMember(t *testing.T, addr, user, chatID string) *testClient {
	t.Helper()
	stuck := dialTinyBuffer(t, addr)
	stuck.joinWithoutLoop(user, chatID)
	return stuck
}

// dialTinyBuffer connects with a 4 KiB receive buffer so a client that stops
// reading backs up into the node quickly.
func dialTinyBuffer(tb testing.TB, addr string) *testClient {
	tb.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second, NetDial: func(ctx context.Context, network, a string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			_ = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
			return serr
		}}
		return nd.DialContext(ctx, network, a)
	}}
	nc, br, _, err := d.Dial(context.Background(), "ws://"+addr+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		tb.Fatal(err)
	}
	if br == nil {
		br = bufio.NewReader(nc)
	}
	tb.Cleanup(func() { _ = nc.Close() })
	return &testClient{t: tb, nc: nc, br: br, nsp: "/messenger"}
}

// TestSlowConsumerDisconnected floods a chat while one member stops reading:
// that member is disconnected as a slow consumer, the others receive every
// message, and the node's queued bytes never exceed the per-connection bound.
func TestSlowConsumerDisconnected(t *testing.T) {
	leakcheck.Check(t)
	const queueLimit = 64 << 10
	n := startNode(t, func(c *Config) {
		c.OutboundQueueBytes = queueLimit
		c.Limits.Messages = 1 << 20
		c.Limits.Joins = 1 << 20
	})
	addr := n.Addr().String()

	dialStuckMember(t, addr, "stuck", "flood")
	// From here on the stuck client reads nothing.

	readers := []*testClient{
		connect(t, addr, token(t, "r1", time.Hour, nil)),
		connect(t, addr, token(t, "r2", time.Hour, nil)),
	}
	for _, r := range readers {
		r.emit("join_chat", map[string]string{"chatId": "flood"}, true)
	}

	// Flood in batches the reading clients keep up with; the stuck one
	// falls behind by everything (8 MiB, more than any socket buffers).
	const messages, batch = 2000, 5
	content := strings.Repeat("m", 4000)
	maxQueued := 0.0
	for i := 0; i < messages; i += batch {
		for range batch {
			msg := newMessage{ChatID: "flood", SenderID: "server", Content: content, MessageType: "TEXT", CreatedAt: timestamp(time.Now())}
			if _, err := n.srv.appendMessage(msg, "server"); err != nil {
				t.Fatal(err)
			}
		}
		maxQueued = max(maxQueued, float64(n.srv.queuedBytes.Load()))
		for _, r := range readers {
			for range batch {
				r.waitEvent("new_message", 10*time.Second)
			}
		}
	}
	if got := counterValue(n.srv.metrics.slowConsumers); got != 1 {
		t.Fatalf("slow consumer disconnects = %v, want 1", got)
	}
	// Three connections can never hold more than three queues' worth.
	if maxQueued > 3*queueLimit {
		t.Fatalf("queued %v bytes, more than 3 × %d", maxQueued, queueLimit)
	}
	t.Logf("max queued bytes observed: %.0f", maxQueued)
	// The accounting returns to zero once everything is written or dropped.
	deadline := time.Now().Add(5 * time.Second)
	for n.srv.queuedBytes.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("queued bytes stuck at %d", n.srv.queuedBytes.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestQueuedBytesReturnToZeroAfterSlowConsumerChurn drops many slow consumers
// while their writers have bytes in flight: the node's queued bytes (the
// realtime_outbound_queue_bytes gauge) never go negative and return to 0 once
// every connection is gone. Shutdown and the writers used to subtract the
// same in-flight bytes twice.
func TestQueuedBytesReturnToZeroAfterSlowConsumerChurn(t *testing.T) {
	leakcheck.Check(t)
	const stuckClients, queueLimit = 60, 32 << 10
	n := startNode(t, func(c *Config) {
		c.OutboundQueueBytes = queueLimit
		c.Limits.Messages = 1 << 20
		c.Limits.Joins = 1 << 20
		c.Limits.Connects = 1 << 20
	})
	addr := n.Addr().String()
	for i := range stuckClients {
		dialStuckMember(t, addr, "stuck"+itoa(i), "churn")
	}
	content := strings.Repeat("m", 4000)
	minQueued := int64(0)
	for sent := 0; counterValue(n.srv.metrics.slowConsumers) < stuckClients; sent++ {
		if sent > 100000 {
			t.Fatalf("only %v of %d slow consumers dropped", counterValue(n.srv.metrics.slowConsumers), stuckClients)
		}
		msg := newMessage{ChatID: "churn", SenderID: "server", Content: content, MessageType: "TEXT", CreatedAt: timestamp(time.Now())}
		if _, err := n.srv.appendMessage(msg, "server"); err != nil {
			t.Fatal(err)
		}
		minQueued = min(minQueued, n.srv.queuedBytes.Load())
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.srv.connCount() > 0 || n.srv.queuedBytes.Load() != 0 {
		minQueued = min(minQueued, n.srv.queuedBytes.Load())
		if time.Now().After(deadline) {
			t.Fatalf("with %d connections left, queued bytes = %d (want 0)", n.srv.connCount(), n.srv.queuedBytes.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if minQueued < 0 {
		t.Fatalf("queued bytes went negative: %d", minQueued)
	}
}
