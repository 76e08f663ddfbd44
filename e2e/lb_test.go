package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLB is a tiny TCP load balancer for tests, what a Kubernetes Service
// does for the nodes: it listens on a free loopback port and hands each
// accepted connection, round robin, to a backend whose admin /readyz answered
// 200 on its last poll (every 100 ms), then pipes bytes both ways until either
// side ends. A connection that finds no ready backend is closed at once (the
// client's own reconnection tries again). It stops with the test.
type testLB struct {
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	backends []*lbBackend
	next     int
	open     map[net.Conn]struct{} // both ends of every piped connection
	refused  int                   // accepted with no ready backend
}

// lbBackend is one node behind the balancer.
type lbBackend struct {
	Addr     string // public address (host:port) connections are piped to
	AdminURL string // http://host:port of the admin listener, for /readyz

	ready    atomic.Bool
	polled   chan struct{} // closed after the first poll
	accepted atomic.Int64  // connections handed to this backend
	active   atomic.Int64  // of which still open
}

// lbStats is a snapshot of one backend's counters.
type lbStats struct {
	Addr     string
	Ready    bool
	Accepted int64
	Active   int64
}

// startLB starts a balancer with no backends; Add puts nodes behind it.
func startLB(t *testing.T) *testLB {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lb := &testLB{ln: ln, ctx: ctx, cancel: cancel, open: map[net.Conn]struct{}{}}
	lb.wg.Add(1)
	go lb.acceptLoop()
	t.Cleanup(lb.stop)
	return lb
}

// URL is what socket.io-client is given: http://127.0.0.1:<port>.
func (lb *testLB) URL() string { return "http://" + lb.ln.Addr().String() }

// Add puts a backend behind the balancer and starts polling its /readyz; it
// takes connections once a poll answered 200.
func (lb *testLB) Add(addr, adminURL string) *lbBackend {
	b := &lbBackend{Addr: addr, AdminURL: adminURL, polled: make(chan struct{})}
	lb.mu.Lock()
	lb.backends = append(lb.backends, b)
	lb.mu.Unlock()
	lb.wg.Add(1)
	go lb.poll(b)
	return b
}

// WaitReady waits until the balancer's view of b's readiness is want.
func (lb *testLB) WaitReady(t *testing.T, b *lbBackend, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		select {
		case <-b.polled:
			if b.ready.Load() == want {
				return
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("load balancer: backend %s not ready=%v within %v", b.Addr, want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stats returns every backend's counters, in the order they were added.
func (lb *testLB) Stats() []lbStats {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := make([]lbStats, 0, len(lb.backends))
	for _, b := range lb.backends {
		out = append(out, lbStats{Addr: b.Addr, Ready: b.ready.Load(), Accepted: b.accepted.Load(), Active: b.active.Load()})
	}
	return out
}

// Refused is how many connections found no ready backend.
func (lb *testLB) Refused() int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.refused
}

func (lb *testLB) poll(b *lbBackend) {
	defer lb.wg.Done()
	client := &http.Client{Timeout: time.Second}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	first := true
	for {
		ready := false
		req, err := http.NewRequestWithContext(lb.ctx, http.MethodGet, b.AdminURL+"/readyz", nil)
		if err == nil {
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ready = resp.StatusCode == http.StatusOK
			}
		}
		if lb.ctx.Err() != nil {
			return
		}
		b.ready.Store(ready)
		if first {
			close(b.polled)
			first = false
		}
		select {
		case <-lb.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pick returns the next ready backend after the last one picked, or nil.
func (lb *testLB) pick() *lbBackend {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for i := range lb.backends {
		b := lb.backends[(lb.next+i)%len(lb.backends)]
		if b.ready.Load() {
			lb.next = (lb.next + i + 1) % len(lb.backends)
			return b
		}
	}
	lb.refused++
	return nil
}

func (lb *testLB) acceptLoop() {
	defer lb.wg.Done()
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return // closed by stop
		}
		lb.wg.Add(1)
		go lb.serve(c)
	}
}

// track registers conns as open; it reports false (and closes them) when the
// balancer is stopping.
func (lb *testLB) track(conns ...net.Conn) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.ctx.Err() != nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		lb.open[c] = struct{}{}
	}
	return true
}

func (lb *testLB) untrack(conns ...net.Conn) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for _, c := range conns {
		delete(lb.open, c)
	}
}

func (lb *testLB) serve(client net.Conn) {
	defer lb.wg.Done()
	b := lb.pick()
	if b == nil {
		client.Close()
		return
	}
	backend, err := net.DialTimeout("tcp", b.Addr, 2*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !lb.track(client, backend) {
		return
	}
	b.accepted.Add(1)
	b.active.Add(1)
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			backend.Close()
		})
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(backend, client); closeBoth(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, backend); closeBoth(); done <- struct{}{} }()
	<-done
	<-done
	b.active.Add(-1)
	lb.untrack(client, backend)
}

// stop closes the listener and every piped connection and waits for the
// balancer's goroutines.
func (lb *testLB) stop() {
	lb.mu.Lock()
	lb.cancel()
	for c := range lb.open {
		c.Close()
	}
	lb.mu.Unlock()
	lb.ln.Close()
	lb.wg.Wait()
}
