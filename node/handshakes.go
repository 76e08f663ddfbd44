package node

import (
	"container/heap"
	"container/list"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Shed caps, the label values of realtime_handshakes_shed_total.
const (
	shedPerAddress = "per_address" // the address already had MaxPendingPerAddr pending
	shedTotal      = "total"       // the node already had MaxPending pending
)

// pendingHandshake is one accepted connection whose WebSocket upgrade is in
// progress: from accept until its 101 is written, or until it is refused
// and closed.
type pendingHandshake struct {
	nc   net.Conn       // the accepted TCP connection
	peer netip.AddrPort // TCP peer: the key of the pending caps (never a forwarded address)

	// guarded by handshakeTable.mu
	elem    *list.Element // in its address's queue; nil once no longer pending
	shedCap string        // the cap it was shed for, "" unless shed
}

// addrHandshakes are the pending handshakes of one TCP peer address (see
// pendingKey).
type addrHandshakes struct {
	addr    netip.Addr // pendingKey of the peers
	pending list.List  // of *pendingHandshake, oldest first
	index   int        // in handshakeTable.busiest
}

// busiestHeap orders addresses by pending handshakes, most first, so the
// total cap sheds from the address holding the most.
type busiestHeap []*addrHandshakes

func (h busiestHeap) Len() int           { return len(h) }
func (h busiestHeap) Less(i, j int) bool { return h[i].pending.Len() > h[j].pending.Len() }
func (h busiestHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *busiestHeap) Push(x any) {
	a := x.(*addrHandshakes)
	a.index = len(*h)
	*h = append(*h, a)
}
func (h *busiestHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return a
}

// handshakeTable bounds the upgrades in progress so that no address can
// hold the accept loop or everyone's handshake slots: at most perAddr
// pending per TCP peer address (trusted proxies exempt) and max in total.
// A newcomer over a cap never waits and is never refused for it: the oldest
// pending handshake of its own address, or for the total cap of the address
// with the most pending, is closed to make room. Upgrades in progress do
// not count toward the node's connection cap.
//
// It owns the handshake goroutines, a group of the node's tracker: add
// starts one, which calls done when it ends, and stop closes every pending
// connection and waits for the group.
type handshakeTable struct {
	perAddr, max int
	exempt       func(netip.Addr) bool // addresses free of the per-address cap (trusted proxies)
	onShed       func(cap string)      // counts a shed handshake; called outside mu

	mu      sync.Mutex // guards the following
	byAddr  map[netip.Addr]*addrHandshakes
	busiest busiestHeap
	total   int

	count      atomic.Int64 // total, for the gauge without the lock
	goroutines *goroutines  // the handshake goroutines
}

// newHandshakeTable returns a table that starts its handshakes on g, a
// group of its own.
func newHandshakeTable(perAddr, max int, exempt func(netip.Addr) bool, onShed func(string), g *goroutines) *handshakeTable {
	return &handshakeTable{perAddr: perAddr, max: max, exempt: exempt, onShed: onShed,
		byAddr: make(map[netip.Addr]*addrHandshakes), goroutines: g}
}

// add records an accepted connection as pending, shedding one older pending
// handshake when a cap is reached, and runs handshake on a goroutine of the
// table's; handshake must call done when it ends.
func (t *handshakeTable) add(nc net.Conn, handshake func(*pendingHandshake)) {
	p := &pendingHandshake{nc: nc, peer: peerAddrPort(nc.RemoteAddr())}
	addr := pendingKey(p.peer.Addr())
	t.mu.Lock()
	var victim *pendingHandshake
	switch a := t.byAddr[addr]; {
	case a != nil && a.pending.Len() >= t.perAddr && !t.exempt(p.peer.Addr()):
		victim = a.pending.Front().Value.(*pendingHandshake)
		victim.shedCap = shedPerAddress
	case t.total >= t.max:
		victim = t.busiest[0].pending.Front().Value.(*pendingHandshake)
		victim.shedCap = shedTotal
	}
	if victim != nil {
		t.removeLocked(victim) // first: it may empty (and drop) p's own address
	}
	a := t.byAddr[addr]
	if a == nil {
		a = &addrHandshakes{addr: addr}
		t.byAddr[addr] = a
		heap.Push(&t.busiest, a)
	}
	p.elem = a.pending.PushBack(p)
	heap.Fix(&t.busiest, a.index)
	t.total++
	t.count.Store(int64(t.total))
	t.mu.Unlock()

	if victim != nil {
		// Its goroutine sees the closed connection and ends; done reports
		// it as shed.
		_ = victim.nc.Close()
		t.onShed(victim.shedCap)
	}
	t.goroutines.Go(func() { handshake(p) })
}

// upgraded takes p out of the pending set once its 101 is written, so it can
// no longer be shed. It reports false when p was shed first (its connection
// is closed: the upgrade failed).
func (t *handshakeTable) upgraded(p *pendingHandshake) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.shedCap != "" {
		return false
	}
	t.removeLocked(p)
	return true
}

// shedFor returns the cap p was shed for, or "".
func (t *handshakeTable) shedFor(p *pendingHandshake) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return p.shedCap
}

// done is called by p's handshake as it ends: it removes p if it is still
// pending and returns the cap p was shed for, or "".
func (t *handshakeTable) done(p *pendingHandshake) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(p)
	return p.shedCap
}

// removeLocked drops p from the pending set if it is there. mu must be held.
func (t *handshakeTable) removeLocked(p *pendingHandshake) {
	if p.elem == nil {
		return
	}
	a := t.byAddr[pendingKey(p.peer.Addr())]
	a.pending.Remove(p.elem)
	p.elem = nil
	t.total--
	t.count.Store(int64(t.total))
	if a.pending.Len() == 0 {
		heap.Remove(&t.busiest, a.index)
		delete(t.byAddr, a.addr)
	} else {
		heap.Fix(&t.busiest, a.index)
	}
}

// pending is the number of handshakes in progress.
func (t *handshakeTable) pending() int { return int(t.count.Load()) }

// stop closes every pending connection and waits for every handshake
// goroutine to end. The accept loop must have returned (no more add).
func (t *handshakeTable) stop() {
	t.mu.Lock()
	var conns []net.Conn
	for _, a := range t.byAddr {
		for e := a.pending.Front(); e != nil; e = e.Next() {
			conns = append(conns, e.Value.(*pendingHandshake).nc)
		}
	}
	t.mu.Unlock()
	for _, nc := range conns {
		_ = nc.Close()
	}
	t.goroutines.wait()
}

// pendingKey is the address the pending caps count a peer under: an IPv4
// address, or the /64 of an IPv6 one (one host's usual allocation; counting
// each of its 2^64 addresses apart would make the per-address cap moot).
func pendingKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// peerAddrPort is a connection's TCP peer address, IPv4 unmapped.
func peerAddrPort(a net.Addr) netip.AddrPort {
	if tcp, ok := a.(*net.TCPAddr); ok {
		ap := tcp.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// handshakeMetrics count what happens to handshakes, every label from a
// fixed set and every series created at start.
type handshakeMetrics struct {
	failures map[string]prometheus.Counter // by reason, every one of upgradeFailureReasons
	shed     *prometheus.CounterVec
}

func newHandshakeMetrics(reg prometheus.Registerer, pending func() int) handshakeMetrics {
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_upgrade_failures_total",
		Help: "WebSocket upgrades that failed or were refused, by reason."}, []string{"reason"})
	shed := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "realtime_handshakes_shed_total",
		Help: "Pending handshakes closed to make room for newer ones, by the cap reached (per_address, total)."}, []string{"cap"})
	m := handshakeMetrics{failures: make(map[string]prometheus.Counter, len(upgradeFailureReasons)), shed: shed}
	for _, r := range upgradeFailureReasons {
		m.failures[r] = failures.WithLabelValues(r)
	}
	shed.WithLabelValues(shedPerAddress)
	shed.WithLabelValues(shedTotal)
	reg.MustRegister(failures, shed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "realtime_pending_handshakes",
			Help: "Accepted connections whose WebSocket upgrade is in progress."},
			func() float64 { return float64(pending()) }))
	return m
}

// failed counts an upgrade failure; a reason outside the fixed set counts as
// bad_handshake.
func (m handshakeMetrics) failed(reason string) {
	c, ok := m.failures[reason]
	if !ok {
		c = m.failures[failBadHandshake]
	}
	c.Inc()
}
