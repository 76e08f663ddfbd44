package node

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// pinger is a raw WebSocket client that sends Engine.IO probes ("2<tag>")
// and waits for their answers ("3<tag>"): the echo every test here relies
// on, answered before any login.
type pinger struct {
	nc net.Conn
	br *bufio.Reader
}

func dialPinger(tb testing.TB, addr string) (*pinger, error) {
	nc, br, err := dialRaw(tb, addr, "", nil)
	if err != nil {
		return nil, err
	}
	p := &pinger{nc: nc, br: br}
	// The open packet comes first.
	if _, err := p.readText(10 * time.Second); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("read open packet: %w", err) // wraps errServerClosed when closed
	}
	return p, nil
}

// errServerClosed reports a close frame or EOF from the server.
var errServerClosed = errors.New("server closed the connection")

// readText returns the next text frame's payload; server pings are skipped.
func (p *pinger) readText(d time.Duration) (string, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(d))
	defer func() { _ = p.nc.SetReadDeadline(time.Time{}) }()
	for {
		f, err := ws.ReadFrame(p.br)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
				errors.Is(err, syscall.ECONNRESET) {
				return "", errServerClosed
			}
			return "", err
		}
		switch f.Header.OpCode {
		case ws.OpClose:
			return "", errServerClosed
		case ws.OpText:
			if s := string(f.Payload); s != "2" {
				return s, nil
			}
		}
	}
}

// probe sends "2<tag>" and waits up to d for "3<tag>".
func (p *pinger) probe(tag string, d time.Duration) error {
	if _, err := p.nc.Write(maskedFrame(ws.OpText, true, []byte("2"+tag))); err != nil {
		return errServerClosed
	}
	for {
		s, err := p.readText(d)
		if err != nil {
			return err
		}
		if s == "3"+tag {
			return nil
		}
	}
}

// TestEpollDescriptorChurn opens and closes connections as fast as it can
// while others read, and closes server-side connections from another
// goroutine as they are being read: descriptor numbers are reused at once,
// so a registration made with a stale descriptor (or a racing write of it)
// shows up as a connection that never gets an answer, or under -race. Every
// connection must either answer every probe or be closed, and the reader
// must hold nothing once all are gone.
func TestEpollDescriptorChurn(t *testing.T) {
	n := startNode(t, func(c *Config) {
		c.IO = IOEpoll
		c.Limits.Connects = 1 << 30
		c.Workers = 4 // few workers: each is busy, widening every window
	})
	addr := n.Addr().String()
	srv := n.srv

	const (
		steady   = 8
		churners = 6
		churnFor = 3 * time.Second
		answerIn = 15 * time.Second // generous: a hung connection never answers
	)
	var (
		wg       sync.WaitGroup
		stop     atomic.Bool
		steadyMu sync.Mutex
		steadyAt = map[string]bool{} // server-side remote addresses of steady clients
		opened   atomic.Int64
		killed   atomic.Int64
	)
	fail := make(chan error, steady+churners)

	// Steady clients probe in a loop and must never be cut.
	for i := range steady {
		p, err := dialPinger(t, addr)
		if err != nil {
			t.Fatalf("steady dial: %v", err)
		}
		steadyMu.Lock()
		steadyAt[p.nc.LocalAddr().String()] = true
		steadyMu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.nc.Close()
			for seq := 0; !stop.Load(); seq++ {
				if err := p.probe(fmt.Sprintf("s%d-%d", i, seq), answerIn); err != nil {
					fail <- fmt.Errorf("steady client %d, probe %d: %w", i, seq, err)
					return
				}
			}
		}()
	}

	// Churners open a connection, probe a few times and drop it, or are
	// dropped by the server killer below mid-probe.
	for i := range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; !stop.Load(); seq++ {
				p, err := dialPinger(t, addr)
				if errors.Is(err, errServerClosed) {
					continue // killed before its open packet was read
				}
				if err != nil {
					if stop.Load() {
						return
					}
					fail <- fmt.Errorf("churner %d: dial: %w", i, err)
					return
				}
				opened.Add(1)
				for k := range 1 + seq%4 {
					err := p.probe(fmt.Sprintf("c%d-%d-%d", i, seq, k), answerIn)
					if errors.Is(err, errServerClosed) {
						break // killed by the server side: fine
					}
					if err != nil {
						_ = p.nc.Close()
						fail <- fmt.Errorf("churner %d, connection %d: %w", i, seq, err)
						return
					}
				}
				_ = p.nc.Close()
			}
		}()
	}

	// The killer closes churners' server-side connections from a goroutine
	// of its own, as the sweeper, drain or an admin call would.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			for _, c := range srv.snapshot() {
				steadyMu.Lock()
				keep := steadyAt[c.remote()]
				steadyMu.Unlock()
				if !keep && c.id%2 == 0 {
					c.close(reasonShutdown)
					killed.Add(1)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()

	time.Sleep(churnFor)
	stop.Store(true)
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Error(err)
	}
	t.Logf("opened %d churn connections, closed %d from the server side", opened.Load(), killed.Load())
	if opened.Load() < 50 {
		t.Errorf("only %d churn connections: the test did not churn", opened.Load())
	}

	// Everything closed: nothing may stay registered or in the epoll index.
	r := srv.reader.(*epollReader)
	waitFor(t, 15*time.Second, func() string {
		r.mu.RLock()
		inReader := len(r.byID)
		r.mu.RUnlock()
		if live := srv.connCount(); live != 0 || inReader != 0 {
			return "connections registered: " + strconv.Itoa(live) + ", in the epoll index: " + strconv.Itoa(inReader)
		}
		return ""
	})
}

// waitFor polls cond until it returns "" or d passes, then fails with its
// last answer.
func waitFor(tb testing.TB, d time.Duration, cond func() string) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", d, why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEpollRearmAfterDescriptorReuse closes a connection while its worker
// is between reading it and re-arming it, and gives its descriptor number
// to a new connection before the re-arm runs. A re-arm of the closed
// connection must not touch the new one's registration: the new connection
// must still be read.
func TestEpollRearmAfterDescriptorReuse(t *testing.T) {
	n := startNode(t, func(c *Config) { c.IO = IOEpoll })
	srv := n.srv
	r := srv.reader.(*epollReader)

	// B's TCP connection is established now and accepted only inside the
	// hook, right after A's descriptor is freed, so it gets A's number.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	clientB, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer clientB.Close()

	a, err := dialPinger(t, n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.nc.Close()
	aAddr := a.nc.LocalAddr().String()

	var reused atomic.Bool
	hookDone := make(chan error, 1)
	var fired atomic.Bool
	hook := func(c *conn) {
		if c.remote() != aAddr || !fired.CompareAndSwap(false, true) {
			return
		}
		hookDone <- func() error {
			fdA := connFD(c)
			c.close(reasonShutdown) // as a sweeper or drain would, from anywhere
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			b := &conn{id: srv.nextID.Add(1), sid: "b", nc: nc, srv: srv, born: time.Now()}
			if b.rc, err = nc.(*net.TCPConn).SyscallConn(); err != nil {
				return err
			}
			reused.Store(connFD(b) == fdA)
			t.Cleanup(func() { b.close(reasonShutdown) })
			return r.add(b)
		}()
	}
	r.beforeRearm.Store(&hook)
	defer r.beforeRearm.Store(nil)

	// A's input wakes its worker; the hook closes A before any answer.
	if _, err := a.nc.Write(maskedFrame(ws.OpText, true, []byte("2a"))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-hookDone:
		if err != nil {
			t.Fatalf("hook: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("A's input was not read")
	}
	if !reused.Load() {
		t.Skip("the new connection did not get the closed one's descriptor number; nothing to check")
	}
	// B must be read: a ping is answered with a pong.
	if _, err := clientB.Write(maskedFrame(ws.OpPing, true, []byte("b"))); err != nil {
		t.Fatal(err)
	}
	_ = clientB.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := ws.ReadFrame(clientB)
	if err != nil {
		t.Fatalf("B is not read after A's stale re-arm: %v", err)
	}
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "b" {
		t.Fatalf("B got opcode %d payload %q, want a pong", f.Header.OpCode, f.Payload)
	}
}

// connFD is c's descriptor number, -1 once closed.
func connFD(c *conn) int {
	fd := -1
	_ = c.rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}
