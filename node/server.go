package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/socketio"
)

// connReader is how a connection's input is read: the epoll loop with a
// worker pool, or one goroutine per connection.
type connReader interface {
	add(c *conn) error
	remove(c *conn)
	close()
}

type server struct {
	cfg      *Config
	log      zerolog.Logger // never sampled
	hotLog   zerolog.Logger // sampled info and warnings from hot paths
	verifier *verifier
	hub      *hub
	metrics  *metrics
	fanout   *fanoutClock // realtime_send_fanout_seconds

	// allGoroutines tracks every goroutine the node starts; Run returns once
	// none is left.
	allGoroutines *goroutines

	// goroutines, the group of allGoroutines the node's parts start theirs
	// on: all of them but the cleaner's, which stop ends last.
	goroutines *goroutines
	writers    *writerPool
	delayed    *delayedFlusher // nil unless WriteDelay > 0
	reader     connReader
	presence   presenceSlots
	cleaner    *cleaner // engine cleanup off the shared goroutines (cleanup.go)
	tlsConf    *tls.Config

	ready    chan struct{}
	ln       net.Listener
	adminLn  net.Listener
	admin    *http.Server
	api      *http.Server // the server API's own listener (Config.APIAddr); nil when it shares admin
	draining atomic.Bool
	stopping atomic.Bool
	nextID   atomic.Uint64

	connsMu sync.Mutex // guards conns
	conns   map[uint64]*conn

	handshakes *handshakeTable // upgrades in progress, bounded per address and in total
	upgrading  atomic.Int64    // upgrades admitted and not yet registered (count against the node cap)
	proxies    trustedProxies  // whose X-Forwarded-For is believed

	addrs struct {
		mu               sync.Mutex // guards main, admin and api
		main, admin, api net.Addr
	}

	// The admin console's: this node's announcements in the registry, its
	// live events, and the client for cross-node lookups (console.go).
	announcer *announcer
	live      *liveEvents
	peers     *http.Client
	// peerPolicy says where peers' apiUrls may point (peers.go).
	peerPolicy *peerPolicy

	engineDown  atomic.Bool  // last engine check failed (readiness)
	engineSeen  atomic.Bool  // the engine has been checked once (not ready before)
	queuedBytes atomic.Int64 // bytes queued to clients and not yet written
	stats       statCounters
}

func newServer(cfg *Config) (*server, error) {
	srv := &server{
		cfg:   cfg,
		log:   cfg.Logger,
		ready: make(chan struct{}),
		conns: make(map[uint64]*conn),
	}
	srv.hotLog = cfg.Logger.Sample(zerolog.LevelSampler{
		InfoSampler: &zerolog.BurstSampler{Burst: 20, Period: time.Second},
		WarnSampler: &zerolog.BurstSampler{Burst: 20, Period: time.Second},
	})
	srv.verifier = newVerifier(cfg.JWT, cfg.Now)
	srv.hub = newHub(srv)
	srv.metrics = newMetrics(srv)
	srv.fanout = newFanoutClock(func(d time.Duration) { srv.metrics.sendFanout.Observe(d.Seconds()) })
	srv.announcer = newAnnouncer(srv)
	srv.live = newLiveEvents(cfg.Now)
	peerPolicy, err := newPeerPolicy(cfg.PeerAPIHosts, cfg.APIURL)
	if err != nil {
		return nil, err
	}
	srv.peerPolicy, srv.peers = peerPolicy, newPeerClient(peerPolicy)
	srv.allGoroutines = newGoroutines()
	srv.goroutines = srv.allGoroutines.group()
	srv.proxies = trustedProxies(cfg.TrustedProxies)
	srv.handshakes = newHandshakeTable(cfg.MaxPendingHandshakesPerAddr, cfg.MaxPendingHandshakes, srv.proxies.contains,
		func(cap string) { srv.metrics.handshakeCounts.shed.WithLabelValues(cap).Inc() }, srv.goroutines.group())
	srv.writers = newWriterPool(max(4, 2*runtime.GOMAXPROCS(0)), srv.goroutines)
	if cfg.WriteDelay > 0 {
		srv.delayed = newDelayedFlusher(cfg.WriteDelay, srv.writers, srv.goroutines)
	}
	srv.presence = presenceSlots{srv: srv}
	srv.cleaner = newCleaner(srv)
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("node: load TLS key pair: %w", err)
		}
		srv.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if cfg.IO == IOEpoll {
		r, err := newEpollReader(srv, cfg.Workers)
		if err != nil {
			return nil, err
		}
		srv.reader = r
	} else {
		srv.reader = goroutineReader{srv: srv}
	}
	if err := cfg.Engines.Bus.Start(srv.hub.deliver); err != nil {
		srv.reader.close()
		return nil, fmt.Errorf("node: start bus: %w", err)
	}
	srv.allGoroutines.Go(srv.cleaner.run)
	return srv, nil
}

func (srv *server) addr() net.Addr {
	srv.addrs.mu.Lock()
	defer srv.addrs.mu.Unlock()
	return srv.addrs.main
}

func (srv *server) adminAddr() net.Addr {
	srv.addrs.mu.Lock()
	defer srv.addrs.mu.Unlock()
	return srv.addrs.admin
}

// apiAddr is where the server API listens: its own listener, or the admin one.
func (srv *server) apiAddr() net.Addr {
	srv.addrs.mu.Lock()
	defer srv.addrs.mu.Unlock()
	if srv.addrs.api != nil {
		return srv.addrs.api
	}
	return srv.addrs.admin
}

// newID returns a random URL-safe id (Engine.IO and Socket.IO sids).
func (srv *server) newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (srv *server) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", srv.cfg.Addr)
	if err != nil {
		return fmt.Errorf("node: listen on %s: %w", srv.cfg.Addr, err)
	}
	adminLn, err := net.Listen("tcp", srv.cfg.AdminAddr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("node: listen on admin address %s: %w", srv.cfg.AdminAddr, err)
	}
	var apiLn net.Listener
	if srv.cfg.APIAddr != "" {
		if apiLn, err = net.Listen("tcp", srv.cfg.APIAddr); err != nil {
			_ = ln.Close()
			_ = adminLn.Close()
			return fmt.Errorf("node: listen on API address %s: %w", srv.cfg.APIAddr, err)
		}
	}
	srv.ln, srv.adminLn = ln, adminLn
	srv.addrs.mu.Lock()
	srv.addrs.main, srv.addrs.admin = ln.Addr(), adminLn.Addr()
	if apiLn != nil {
		srv.addrs.api = apiLn.Addr()
	}
	srv.addrs.mu.Unlock()
	adminH, apiH := srv.adminHandler()
	srv.admin = &http.Server{Handler: adminH, ReadHeaderTimeout: 5 * time.Second}
	if apiLn != nil {
		srv.api = &http.Server{Handler: apiH, ReadHeaderTimeout: 5 * time.Second}
	}

	// Engines without a ping (in-memory) are always reachable; otherwise
	// the maintenance loop's first check decides readiness.
	srv.engineSeen.Store(srv.cfg.Engines.Ping == nil)

	// The loops are owned here: stopped (listener closed, loopCtx
	// cancelled) and awaited before the connections are closed.
	var loops sync.WaitGroup
	loopCtx, stopLoops := context.WithCancel(context.Background())
	defer stopLoops()
	loopFuncs := []func(){
		func() { srv.acceptLoop(ln) },
		func() { _ = srv.admin.Serve(adminLn) },
		func() { srv.sweepLoop(loopCtx) },
		func() { srv.maintenanceLoop(loopCtx) },
		func() { srv.announcer.loop(loopCtx) },
	}
	if srv.api != nil {
		loopFuncs = append(loopFuncs, func() { _ = srv.api.Serve(apiLn) })
	}
	for _, loop := range loopFuncs {
		loops.Add(1)
		srv.goroutines.Go(func() { defer loops.Done(); loop() })
	}
	srv.log.Info().Str("addr", ln.Addr().String()).Str("admin_addr", adminLn.Addr().String()).Str("api_addr", srv.apiAddr().String()).
		Str("namespace", srv.cfg.Namespace).Str("io", string(srv.cfg.IO)).Bool("dev", srv.cfg.Dev).Msg("node listening")
	close(srv.ready)

	<-ctx.Done()
	srv.drain()
	srv.stop(ln, stopLoops, &loops)
	srv.log.Info().Msg("node stopped")
	return nil
}

// stopGoroutinesTimeout bounds the wait for the node's goroutines at the
// end of Run (blocked writes end at once when their sockets close; a
// handshake ends within the upgrade timeout).
const stopGoroutinesTimeout = 10 * time.Second

// stop ends everything run started, in order: no new connections, the
// loops, every connection, readers and writers, pending timers, the
// goroutines still running, and last the cleaner (which drains the engine
// cleanup the closes queued). The engines belong to whoever built them
// (cmd/realtime closes them after Run returns).
func (srv *server) stop(ln net.Listener, stopLoops context.CancelFunc, loops *sync.WaitGroup) {
	srv.stopping.Store(true)
	_ = ln.Close()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = srv.admin.Shutdown(shutCtx)
	if srv.api != nil {
		_ = srv.api.Shutdown(shutCtx)
	}
	cancel()
	stopLoops()
	loops.Wait()
	srv.handshakes.stop()
	srv.closeAll(reasonShutdown)
	srv.reader.close()
	if srv.delayed != nil {
		srv.delayed.close()
	}
	srv.writers.close()
	srv.goroutines.fireTimers()
	// Everything but the cleaner ends; what it queued is then drained.
	if !srv.goroutines.waitFor(stopGoroutinesTimeout) {
		srv.log.Warn().Int("goroutines", srv.goroutines.count()).Msg("node goroutines still running at stop")
	}
	srv.cleaner.stop()
	srv.allGoroutines.waitFor(stopGoroutinesTimeout)
	srv.peers.CloseIdleConnections()
}

// register adds an upgraded connection to the registry, unless it is
// already closed (its reader may close it before it is registered). The
// check runs under connsMu, which onClosed takes after setting closed: a
// connection closed later is removed by its onClosed.
func (srv *server) register(c *conn) {
	srv.connsMu.Lock()
	if c.isClosed() {
		srv.connsMu.Unlock()
		return
	}
	srv.conns[c.id] = c
	srv.connsMu.Unlock()
	srv.metrics.connections.Inc()
}

// snapshot returns the registered connections.
func (srv *server) snapshot() []*conn { return srv.appendConns(nil) }

// appendConns appends the registered connections to dst.
func (srv *server) appendConns(dst []*conn) []*conn {
	srv.connsMu.Lock()
	defer srv.connsMu.Unlock()
	dst = slices.Grow(dst, len(srv.conns))
	for _, c := range srv.conns {
		dst = append(dst, c)
	}
	return dst
}

func (srv *server) connCount() int {
	srv.connsMu.Lock()
	defer srv.connsMu.Unlock()
	return len(srv.conns)
}

// onClosed runs once per connection after its socket is closed.
func (srv *server) onClosed(c *conn, reason string) {
	srv.connsMu.Lock()
	_, registered := srv.conns[c.id]
	delete(srv.conns, c.id)
	srv.connsMu.Unlock()
	if registered {
		srv.metrics.connections.Dec()
	}
	srv.hub.removeConn(c)
	srv.releaseSlot(c)
	srv.metrics.disconnects.WithLabelValues(reason).Inc()
	id := c.sess.who.Load()
	if id != nil {
		srv.metrics.connected.Dec()
		// Sampled: a reconnect storm must not flood the log (the metrics
		// count every disconnect).
		srv.hotLog.Info().Str("user", id.userID).Str("conn", c.sid).Str("remote", c.remote()).Str("reason", reason).
			Dur("duration_ms", time.Since(c.born)).Msg("disconnected")
		if reason != reasonClientClose && reason != reasonClientGone {
			srv.live.record(liveEvent{Kind: liveDisconnect, Code: reason, User: id.userID, Conn: c.sid, Remote: c.remote()})
		}
	} else {
		srv.log.Debug().Str("conn", c.sid).Str("remote", c.remote()).Str("reason", reason).Msg("closed before connecting")
	}
}

// closeAll closes every connection at once.
func (srv *server) closeAll(reason string) {
	for _, c := range srv.snapshot() {
		c.close(reason)
	}
}

// releaseSlot gives back c's presence entry once, whoever gets there first.
// The engine call is the cleaner's: this may run on a goroutine that carries
// other connections' writes, pings or bus deliveries.
func (srv *server) releaseSlot(c *conn) {
	if c.sess.slot.CompareAndSwap(true, false) {
		srv.cleaner.release(c.sess.userID(), c.sid)
	}
}

// presenceSlots wraps the presence engine for the per-user cap.
type presenceSlots struct{ srv *server }

func (p presenceSlots) acquire(c *conn, userID string) (bool, error) {
	if p.srv.engineDown.Load() {
		return false, errEngineDown
	}
	ctx, cancel := p.srv.engineCtx()
	defer cancel()
	return p.srv.cfg.Engines.Presence.Acquire(ctx, userID, c.sid, p.srv.cfg.Limits.MaxUserConnections)
}

// release gives an entry back; only the cleaner calls it. While the engine
// is down it answers errEngineDown without a round trip, and the cleaner
// tries again later.
func (p presenceSlots) release(parent context.Context, userID, connID string) error {
	if p.srv.engineDown.Load() {
		return errEngineDown
	}
	ctx, cancel := context.WithTimeout(parent, p.srv.engineTimeout())
	defer cancel()
	return p.srv.cfg.Engines.Presence.Release(ctx, userID, connID)
}

// isUnavailable reports whether err means an engine could not be reached.
func isUnavailable(err error) bool {
	return errors.Is(err, bus.ErrUnavailable) || errors.Is(err, presence.ErrUnavailable) ||
		errors.Is(err, membership.ErrUnavailable) || errors.Is(err, limits.ErrUnavailable) ||
		errors.Is(err, lease.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// sweepLoop drives heartbeats, connect timeouts, token expiry and typing
// expiry for every connection from one goroutine: no timer per connection.
func (srv *server) sweepLoop(ctx context.Context) {
	tick := min(srv.cfg.PingInterval, srv.cfg.PingTimeout) / 10
	tick = max(tick, 5*time.Millisecond)
	tick = min(tick, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	var buf []*conn // reused: the sweep runs every tick over every connection
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			buf = srv.appendConns(buf[:0])
			srv.sweep(srv.cfg.Now(), buf)
			clear(buf)
		}
	}
}

var pingFrame = textFrame(func(dst []byte) []byte { return append(dst, '2') })

func (srv *server) sweep(now time.Time, conns []*conn) {
	nowNs := now.UnixNano()
	interval, timeout := srv.cfg.PingInterval.Nanoseconds(), srv.cfg.PingTimeout.Nanoseconds()
	for _, c := range conns {
		sent := c.pingSentAt.Load()
		if c.awaitingPong.Load() {
			if nowNs-sent > timeout {
				c.close(reasonPingTimeout)
				continue
			}
		} else if nowNs-sent >= interval {
			c.pingSentAt.Store(nowNs)
			c.awaitingPong.Store(true)
			c.send(pingFrame)
		}
		id := c.sess.who.Load()
		if id == nil {
			if now.Sub(c.born) > srv.cfg.ConnectTimeout {
				c.close(reasonConnectTimeout)
			}
			continue
		}
		if !now.Before(id.expires) {
			srv.expire(c)
		}
	}
	srv.hub.expireTyping(now)
}

// expire ends a connection whose token expired: an AUTH_EXPIRED error, a
// Socket.IO DISCONNECT per namespace, then the transport is closed.
func (srv *server) expire(c *conn) {
	c.sess.mu.Lock()
	nsps := c.sess.nsps
	c.sess.mu.Unlock()
	payload := []byte(`{"code":"AUTH_EXPIRED","message":"the token expired; reconnect with a fresh one"}`)
	for _, ns := range []nsMask{nsChat, nsRoot} {
		if nsps&ns == 0 {
			continue
		}
		c.emit(ns, evError, payload)
		nsp := srv.nsName(ns)
		c.send(textFrame(func(dst []byte) []byte { return socketio.AppendDisconnect(dst, nsp) }))
	}
	c.closeAfter(closeFrame(1000, codeAuthExpired), reasonAuthExpired)
}

// maintenanceLoop refreshes presence, reports chats, checks the engine and
// logs the stats line.
func (srv *server) maintenanceLoop(ctx context.Context) {
	refresh := time.NewTicker(5 * time.Second)
	defer refresh.Stop()
	var statsC <-chan time.Time
	if srv.cfg.StatsInterval > 0 {
		st := time.NewTicker(srv.cfg.StatsInterval)
		defer st.Stop()
		statsC = st.C
	}
	health := time.NewTicker(time.Second)
	defer health.Stop()
	var downSince time.Time // start of the engine outage in progress
	// Not ready until the engine has answered (or failed) once: a node
	// whose Redis is unreachable from the start must never look ready.
	srv.checkEngine(&downSince)
	for {
		select {
		case <-ctx.Done():
			return
		case <-health.C:
			srv.checkEngine(&downSince)
		case <-refresh.C:
			// While the engine is down its outage line says it all: no
			// warning every 5 s.
			c, cancel := srv.engineCtx()
			if err := srv.cfg.Engines.Presence.Refresh(c); err != nil && !srv.engineDown.Load() {
				srv.log.Warn().Err(err).Msg("presence refresh failed")
			}
			if err := srv.cfg.Engines.Presence.SetChats(c, srv.hub.chatIDs()); err != nil && !srv.engineDown.Load() {
				srv.log.Warn().Err(err).Msg("presence chat report failed")
			}
			cancel()
			srv.fanout.expire(time.Now())
		case <-statsC:
			srv.logStats()
		}
	}
}

// checkEngine updates readiness from the engine's ping, and logs one line
// when an outage starts and one, with its length, when it ends. Only the
// maintenance goroutine calls it (it owns downSince).
func (srv *server) checkEngine(downSince *time.Time) {
	if srv.cfg.Engines.Ping == nil {
		return
	}
	err := srv.cfg.Engines.Ping()
	was := srv.engineDown.Swap(err != nil)
	srv.engineSeen.Store(true)
	switch {
	case err != nil && !was:
		*downSince = time.Now()
		srv.log.Error().Err(err).Msg("engine unreachable; not ready")
	case err == nil && was:
		srv.log.Info().Dur("duration_ms", time.Since(*downSince)).Msg("engine reachable again; ready")
	}
}
