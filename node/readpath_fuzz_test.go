package node

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// fuzzMaxFrame is the frame limit of the fuzzed node: small, so that short
// inputs reach the size checks too.
const fuzzMaxFrame = 1024

// readPathSeeds are inputs for the production read path fuzzers: what
// socket.io-client sends, and the conformance table's troublemakers.
func readPathSeeds(tb testing.TB) [][]byte {
	tok := token(tb, "fuzz-user", 24*time.Hour, nil)
	frames := func(fs ...wsf) []byte {
		var b []byte
		for _, f := range fs {
			b = append(b, f.bytes()...)
		}
		return b
	}
	return [][]byte{
		frames(text(`40/messenger,{"token":"`+tok+`"}`), text(`42/messenger,0["join_chat",{"chatId":"c1"}]`),
			text(`42/messenger,1["send_message",{"chatId":"c1","content":"hi","messageType":"TEXT","tempId":"t1"}]`)),
		frames(text(`40/messenger,{"token":"`+tok+`"}`), text(`42/messenger,0["send_message",`+strings.Repeat("[", 300))),
		frames(text(`40/messenger`), text("3"), text("2probe")),
		frames(textPart("2frag"), ping("p"), cont("ment"), pong("")),
		frames(text(`451-/messenger,["x",{"_placeholder":true,"num":0}]`), wsf{op: ws.OpBinary, payload: []byte{1, 2, 3}}),
		frames(textPart("2κόσμε"), contPart("\xed\xa0\x80")),
		frames(closeWith(1000, "bye"), text("2after")),
		frames(closeWith(1005, "")),
		frames(wsf{op: ws.OpText, payload: []byte("2a"), rsv: 4}),
		frames(wsf{op: ws.OpText, payload: []byte("2a"), unmasked: true}),
		frames(text("2" + strings.Repeat("y", fuzzMaxFrame))),
		frames(textPart("2"+strings.Repeat("y", 600)), cont(strings.Repeat("z", 600))),
		maskedFrame(ws.OpText, true, []byte("3")),
	}
}

// fuzzServer is a node that is built but not listening: the fuzzers hand
// its connections their input directly, through the production functions.
func fuzzServer(tb testing.TB) *server {
	n, err := New(Config{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", NodeID: "fuzz",
		JWT: JWTConfig{Secret: []byte(testSecret)}, APIKey: "k", Dev: true, StatsInterval: -1,
		IO: IOEpoll, Workers: 1, WriteTimeout: time.Second,
		Limits:  Limits{MaxFrame: fuzzMaxFrame},
		Engines: memoryEngines(),
		Logger:  zerolog.Nop(),
	})
	if err != nil {
		tb.Fatalf("new node: %v", err)
	}
	srv := n.srv
	tb.Cleanup(func() {
		srv.reader.close()
		srv.writers.close()
		_ = srv.cfg.Engines.Bus.Close()
	})
	return srv
}

// fuzzConn is a server connection over one end of a socketpair; the other
// end is drained until it is closed.
type fuzzConn struct {
	c       *conn
	peer    net.Conn
	drained chan struct{}
}

func newFuzzConn(t *testing.T, srv *server) *fuzzConn {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	toConn := func(fd int, name string) net.Conn {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close() // FileConn holds a duplicate
		nc, err := net.FileConn(f)
		if err != nil {
			t.Fatalf("file conn: %v", err)
		}
		return nc
	}
	nc, peer := toConn(fds[0], "server"), toConn(fds[1], "client")
	rc, err := nc.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatalf("syscall conn: %v", err)
	}
	fc := &fuzzConn{
		c:       &conn{id: srv.nextID.Add(1), sid: "fuzz", nc: nc, rc: rc, srv: srv, born: time.Now()},
		peer:    peer,
		drained: make(chan struct{}),
	}
	go func() {
		defer close(fc.drained)
		_, _ = io.Copy(io.Discard, peer)
	}()
	return fc
}

// finish closes both ends and checks that a closed connection stays closed.
func (fc *fuzzConn) finish(t *testing.T) {
	c := fc.c
	c.readMu.Lock()
	c.srv.releasePartial(c)
	c.readMu.Unlock()
	c.close(reasonShutdown)
	if !c.isClosed() {
		t.Fatal("connection not closed after close")
	}
	if c.send(appendFrame(nil, ws.OpText, []byte("3"))) {
		t.Fatal("a closed connection accepted a frame")
	}
	c.close(reasonShutdown) // twice: a no-op
	_ = fc.peer.Close()
	<-fc.drained
}

// closing reports whether the connection is closed or closing.
func (c *conn) closingOrClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.closed
}

// splitInput returns the input whole, or cut in two at split.
func splitInput(in []byte, split uint16, whole bool) [][]byte {
	if whole {
		return [][]byte{in}
	}
	at := int(split) % (len(in) + 1)
	return [][]byte{in[:at], in[at:]}
}

// FuzzConnOnData drives the production frame handler, conn.onData and all
// it calls (frames, fragments, UTF-8, close frames, Engine.IO and Socket.IO
// packets, event handlers), with arbitrary input, whole and split in two as
// a reader would deliver it: it must never panic, never consume more than
// it was given, leave a connection it gave up on closing, and come to the
// same verdict whichever way the input was cut.
func FuzzConnOnData(f *testing.F) {
	srv := fuzzServer(f)
	for _, s := range readPathSeeds(f) {
		f.Add(s, uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		var reasons [2]string
		for i, whole := range []bool{true, false} {
			fc := newFuzzConn(t, srv)
			c := fc.c
			var pending []byte
			for _, chunk := range splitInput(in, split, whole) {
				pending = append(pending, chunk...)
				c.readMu.Lock()
				consumed, reason := c.onData(pending)
				c.readMu.Unlock()
				if consumed < 0 || consumed > len(pending) {
					t.Fatalf("consumed %d of %d bytes", consumed, len(pending))
				}
				if reason != "" {
					if consumed != len(pending) {
						t.Fatalf("gave up (%s) with %d of %d bytes consumed", reason, consumed, len(pending))
					}
					if !c.closingOrClosed() {
						t.Fatalf("gave up (%s) but the connection is open", reason)
					}
					reasons[i] = reason
					break
				}
				pending = append(pending[:0], pending[consumed:]...)
			}
			fc.finish(t)
		}
		if reasons[0] != reasons[1] {
			t.Fatalf("whole input: %q; split at %d: %q", reasons[0], int(split)%(len(in)+1), reasons[1])
		}
	})
}

// FuzzEpollReadReady drives the epoll worker's read function,
// epollReader.readReady, over a socketpair: the input is written to the
// client end (whole, or in two writes with a read between) and read by the
// production code with its production buffer. It must never panic, keep at
// most one partial frame, and reach the same open/closed verdict whichever
// way the input was cut.
func FuzzEpollReadReady(f *testing.F) {
	srv := fuzzServer(f)
	r := srv.reader.(*epollReader)
	buf := make([]byte, 2*(srv.cfg.Limits.MaxFrame+14)) // as worker() sizes it
	for _, s := range readPathSeeds(f) {
		f.Add(s, uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		if len(in) > 64<<10 {
			return // keep every write within the socket's buffer
		}
		var open [2]bool
		for i, whole := range []bool{true, false} {
			fc := newFuzzConn(t, srv)
			c := fc.c
			open[i] = true
			for _, chunk := range splitInput(in, split, whole) {
				if len(chunk) > 0 {
					if _, err := fc.peer.Write(chunk); err != nil {
						t.Fatalf("write: %v", err)
					}
				}
				// Read until the socket is empty or the connection gives up,
				// as repeated epoll wake-ups would.
				for open[i] {
					c.readMu.Lock()
					open[i] = r.readReady(c, buf)
					partial := len(c.partial)
					c.readMu.Unlock()
					if partial > srv.cfg.Limits.MaxFrame+14 {
						t.Fatalf("kept a partial frame of %d bytes", partial)
					}
					if unread(t, c) == 0 {
						break
					}
				}
				if !open[i] {
					if !c.closingOrClosed() {
						t.Fatal("readReady gave up but the connection is open")
					}
					break
				}
			}
			fc.finish(t)
		}
		if open[0] != open[1] {
			t.Fatalf("whole input: open=%v; split at %d: open=%v", open[0], int(split)%(len(in)+1), open[1])
		}
	})
}

// unread is how many bytes wait in c's socket.
func unread(t *testing.T, c *conn) int {
	var n int
	var ierr error
	if err := c.rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return 0 // closed
	}
	if ierr != nil {
		t.Fatalf("SIOCINQ: %v", ierr)
	}
	return n
}
