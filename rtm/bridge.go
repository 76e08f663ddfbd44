package rtm

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/rtm/rtmstatus"
)

// Config configures [New]. NodeID, URL, Lease, Bus and Store are required;
// every other zero field takes its default.
type Config struct {
	// NodeID names this node as the lease holder. Required.
	NodeID string
	// URL is the provider's WebSocket URL (ws:// or wss://). The profile id
	// replaces a literal "{profileId}" in it if there is one, and is added
	// as the query parameter profileId otherwise:
	// "ws://rtm:7200/ws" -> "ws://rtm:7200/ws?profileId=p1". Required.
	URL string

	// Lease is the leader lease (lease.NewRedis for a cluster, lease.NewMemory
	// for one node, which then always leads). Required.
	Lease lease.Lease
	// LeaseName is the lease's name. Default "rtm".
	LeaseName string
	// LeaseTTL is the lease's time to live. Default 10s.
	LeaseTTL time.Duration
	// RenewInterval is how often the leader renews the lease and a follower
	// tries to take it. Default LeaseTTL/3.
	RenewInterval time.Duration
	// SafetyMargin: the leader stops its bridge when LeaseTTL minus this
	// has passed since the start of its last successful renewal (split-brain
	// guard: upstream connections are closed before the lease can expire and
	// pass to another node). Default LeaseTTL/5; must be below
	// LeaseTTL-RenewInterval.
	SafetyMargin time.Duration

	// Bus carries the mapped events to every node (bus.Profile channels).
	// Required.
	Bus bus.Broker
	// Store keeps sessions, reported states and seen event ids
	// (NewRedisStore for a cluster, NewMemoryStore for one node). Required.
	Store Store

	// Logger receives the bridge's lines. Zero value: disabled.
	Logger zerolog.Logger
	// Now is the clock used for lease accounting, connection stability and
	// default timestamps. Default time.Now.
	Now func() time.Time

	// Backoff is the upstream reconnect policy. Zero value: 500ms doubling
	// to 30s with full jitter, reset after 30s connected.
	Backoff Backoff
	// DialTimeout bounds the TCP connect, TLS and upgrade. Default 10s.
	DialTimeout time.Duration
	// TLSConfig is used for wss:// URLs. Default: Go's defaults.
	TLSConfig *tls.Config
	// NetDial replaces the TCP dialer (proxies, tests). Default net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Header is added to every upgrade request (User-Agent, say); the
	// Cookie header comes from the profile's session.
	Header http.Header
	// PingInterval: the bridge pings each upstream connection this often and
	// drops one that has sent nothing (not even a pong) for twice as long.
	// Default 30s.
	PingInterval time.Duration
	// MaxFrameSize bounds one upstream message. Default 1 MiB.
	MaxFrameSize int64
	// DedupeTTL is how long an upstream event id is remembered, cluster-wide.
	// Default 5m.
	DedupeTTL time.Duration
	// ResyncInterval: the leader checks the stored sessions' version this
	// often even without a change signal, and rereads the sessions when it
	// moved (and at least every 12 intervals); it also records the profile
	// figures that changed. Default 5s.
	ResyncInterval time.Duration
}

// Bridge is the RTM bridge of one node. Every node runs one (Run); the one
// holding the lease keeps the upstream connections. Every node uses it to
// filter profile-channel deliveries (Accept), to serve the profile API
// (PutProfile, DeleteProfile) and to report figures (Stats, Collectors).
type Bridge struct {
	cfg     Config
	log     zerolog.Logger
	sampled zerolog.Logger // for per-frame warnings
	running atomic.Bool

	leading atomic.Bool  // this node runs the bridge now
	term    atomic.Int64 // our fencing number while leading
	known   atomic.Int64 // last fencing number observed in the lease (any holder)
	maxTerm atomic.Int64 // highest term accepted by Accept
	lowTerm time.Time    // since when the lease shows a term below maxTerm; campaign goroutine only

	campaignWake chan struct{} // cap 1: try the lease now (it was released)
	bridgeWake   chan struct{} // cap 1: reread the sessions now

	mu      sync.Mutex          // guards the following fields
	states  map[string]State    // the leader's profile states; empty when not leading
	figures map[string]Figures  // the leader's profile figures; empty when not leading
	dirty   map[string]struct{} // profiles whose figures changed since they were last recorded in the store

	reconnects, eventsIn, eventsOut, duplicates, stale atomic.Uint64
	unknown, malformed, own, failed                    atomic.Uint64
}

// New checks cfg, fills its defaults and returns a bridge. It does no I/O.
func New(cfg Config) (*Bridge, error) {
	switch {
	case cfg.NodeID == "":
		return nil, errors.New("rtm: NodeID is required")
	case cfg.Lease == nil:
		return nil, errors.New("rtm: Lease is required")
	case cfg.Bus == nil:
		return nil, errors.New("rtm: Bus is required")
	case cfg.Store == nil:
		return nil, errors.New("rtm: Store is required")
	}
	if err := checkURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.LeaseName == "" {
		cfg.LeaseName = "rtm"
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.LeaseTTL < 10*time.Millisecond {
		return nil, errors.New("rtm: lease ttl must be at least 10ms")
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = cfg.LeaseTTL / 3
	}
	if cfg.SafetyMargin == 0 {
		cfg.SafetyMargin = cfg.LeaseTTL / 5
	}
	if cfg.RenewInterval <= 0 || cfg.SafetyMargin <= 0 || cfg.RenewInterval+cfg.SafetyMargin >= cfg.LeaseTTL {
		return nil, errors.New("rtm: renew interval plus safety margin must be positive and below the lease ttl")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Backoff = cfg.Backoff.withDefaults()
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 30 * time.Second
	}
	if cfg.MaxFrameSize <= 0 {
		cfg.MaxFrameSize = 1 << 20
	}
	if cfg.DedupeTTL <= 0 {
		cfg.DedupeTTL = 5 * time.Minute
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 5 * time.Second
	}
	log := cfg.Logger.With().Str("component", "rtm").Logger()
	return &Bridge{
		cfg:          cfg,
		log:          log,
		sampled:      log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute}),
		campaignWake: make(chan struct{}, 1),
		bridgeWake:   make(chan struct{}, 1),
		states:       make(map[string]State),
		figures:      make(map[string]Figures),
		dirty:        make(map[string]struct{}),
	}, nil
}

func checkURL(s string) error {
	u, err := url.Parse(strings.ReplaceAll(s, "{profileId}", "x"))
	if err != nil || s == "" {
		return fmt.Errorf("rtm: bad URL %q: want ws://host[:port]/path or wss://...", s)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" || u.Host == "" {
		return fmt.Errorf("rtm: bad URL %q: want ws://host[:port]/path or wss://...", s)
	}
	return nil
}

// profileURL is the upstream URL of one profile (see Config.URL).
func (b *Bridge) profileURL(profileID string) string {
	if strings.Contains(b.cfg.URL, "{profileId}") {
		return strings.ReplaceAll(b.cfg.URL, "{profileId}", url.PathEscape(profileID))
	}
	u, _ := url.Parse(b.cfg.URL) // checked by New
	q := u.Query()
	q.Set("profileId", profileID)
	u.RawQuery = q.Encode()
	return u.String()
}

// PutProfile validates and stores a profile's session (the "session" value
// of PUT /api/rtm/profiles/{id}); the leader connects, or reconnects with
// the new cookies, within moments. A session it cannot use is refused with
// an error matching ErrBadSession, naming the problem.
func (b *Bridge) PutProfile(ctx context.Context, profileID string, session json.RawMessage) error {
	if err := checkProfileID(profileID); err != nil {
		return err
	}
	s, err := compactSession(session)
	if err != nil {
		return err
	}
	return b.cfg.Store.PutSession(ctx, profileID, s)
}

// DeleteProfile forgets a profile; the leader drops its connection.
func (b *Bridge) DeleteProfile(ctx context.Context, profileID string) error {
	if err := checkProfileID(profileID); err != nil {
		return err
	}
	return b.cfg.Store.DeleteSession(ctx, profileID)
}

// Stats reads the lease holder (one round trip) and the profile counts by
// state: the leader's own view on the leader, the counts kept beside the
// states the leader stored elsewhere (a second round trip, whose cost does
// not grow with the profiles).
func (b *Bridge) Stats(ctx context.Context) (rtmstatus.Stats, error) {
	t, held, err := b.cfg.Lease.Holder(ctx, b.cfg.LeaseName)
	if err != nil {
		return rtmstatus.Stats{}, fmt.Errorf("rtm: stats: %w", err)
	}
	s := rtmstatus.Stats{
		Profiles:       map[string]int{},
		Reconnects:     b.reconnects.Load(),
		EventsIn:       b.eventsIn.Load(),
		EventsOut:      b.eventsOut.Load(),
		DuplicatesDrop: b.duplicates.Load(),
		StaleTermsDrop: b.stale.Load(),
	}
	for _, st := range States {
		s.Profiles[string(st)] = 0
	}
	if held {
		s.Leader, s.Term = t.Holder, t.Fencing
		b.raiseTerm(t.Fencing)
	}
	s.IsLeader = held && b.leading.Load() && t.Holder == b.cfg.NodeID && t.Fencing == b.term.Load()
	var counts map[State]int
	if s.IsLeader {
		counts = countStates(b.localStates())
	} else if counts, err = b.cfg.Store.StateCounts(ctx); err != nil {
		return rtmstatus.Stats{}, fmt.Errorf("rtm: stats: %w", err)
	}
	for st, n := range counts {
		s.Profiles[string(st)] += n
	}
	return s, nil
}

func (b *Bridge) localStates() map[string]State {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]State, len(b.states))
	for id, st := range b.states {
		out[id] = st
	}
	return out
}

// IsLeader reports whether this node runs the bridge now.
func (b *Bridge) IsLeader() bool { return b.leading.Load() }

// Accept filters and unwraps one profile-channel delivery. Every bridge
// publication is {"term":N,"data":{...}}; Accept remembers the highest term
// it has seen (one lease, so one sequence of fencing numbers for the whole
// cluster: a per-profile view would let a stale leader's events through for
// a profile the new leader has not published to yet) and drops deliveries
// of an older term. It also learns terms from the lease itself (Run and
// Stats), so a stale leader's late events are dropped even before the new
// leader has published anything. Cheap and non-blocking: one atomic, no
// allocation for envelopes as the bridge writes them.
func (b *Bridge) Accept(d bus.Delivery) (event string, data json.RawMessage, ok bool) {
	switch d.Event {
	case EventMessageToast, EventMessageRead, EventDialogLimitChanged, EventStatus:
	default:
		return "", nil, false
	}
	term, payload, ok := unwrap(d.Data)
	if !ok {
		return "", nil, false
	}
	for {
		cur := b.maxTerm.Load()
		if term < cur {
			b.stale.Add(1)
			return "", nil, false
		}
		if term == cur || b.maxTerm.CompareAndSwap(cur, term) {
			return d.Event, payload, true
		}
	}
}

// raiseTerm records a fencing number observed in the lease.
func (b *Bridge) raiseTerm(f int64) {
	b.known.Store(f)
	for {
		cur := b.maxTerm.Load()
		if f <= cur || b.maxTerm.CompareAndSwap(cur, f) {
			return
		}
	}
}

// observeLease is raiseTerm for the campaign loop (Run and lead, one
// goroutine), which also handles a
// fencing counter that went backwards (Redis lost its data): once the lease
// has shown a lower term than the highest accepted for a whole TTL, no
// leader of the older sequence can still be holding, so the lower sequence
// becomes the reference.
func (b *Bridge) observeLease(f int64) {
	if f >= b.maxTerm.Load() {
		b.lowTerm = time.Time{}
		b.raiseTerm(f)
		return
	}
	b.known.Store(f)
	now := b.cfg.Now()
	if b.lowTerm.IsZero() {
		b.lowTerm = now
		return
	}
	if now.Sub(b.lowTerm) >= b.cfg.LeaseTTL {
		b.log.Warn().Int64("term", f).Int64("highest_seen", b.maxTerm.Load()).
			Msg("rtm: the lease's fencing number went backwards (Redis lost its data?); accepting the new sequence")
		b.maxTerm.Store(f)
		b.lowTerm = time.Time{}
	}
}

// Run campaigns for the lease until ctx ends: a follower tries to take it
// every RenewInterval (at once when the leader signals a release); the
// leader runs the bridge under a context cancelled when leadership is lost,
// renews every RenewInterval, stops the bridge before an unrenewed lease can
// expire, and on ctx end stops the bridge and releases the lease at once.
// Run returns nil when ctx ends; it must not be called twice at a time.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("rtm: Run is already running")
	}
	defer b.running.Store(false)

	wctx, stopWatch := context.WithCancel(ctx)
	watch := b.cfg.Store.Watch(wctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range watch {
			poke(b.campaignWake)
			poke(b.bridgeWake)
		}
	})
	defer wg.Wait()
	defer stopWatch()

	b.log.Info().Str("url", b.cfg.URL).Dur("lease_ttl_ms", b.cfg.LeaseTTL).Msg("rtm: campaigning for the lease")
	failing := false
	for {
		start := b.cfg.Now()
		term, ok, err := b.cfg.Lease.TryAcquire(ctx, b.cfg.LeaseName, b.cfg.NodeID, b.cfg.LeaseTTL)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil:
			if !failing {
				b.log.Warn().Err(err).Msg("rtm: cannot reach the lease; retrying")
			}
			failing = true
		default:
			if failing {
				b.log.Info().Msg("rtm: lease reachable again")
			}
			failing = false
			b.observeLease(term.Fencing)
			if ok {
				b.lead(ctx, term, start)
				if ctx.Err() != nil {
					return nil
				}
			}
		}
		t := time.NewTimer(b.cfg.RenewInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-b.campaignWake:
		case <-t.C:
		}
		t.Stop()
	}
}

type renewResult struct {
	start time.Time
	ok    bool
	err   error
}

// lead runs the bridge for term until the lease is lost, cannot be renewed
// in time, or ctx ends (then it releases the lease).
func (b *Bridge) lead(ctx context.Context, term lease.Term, acquiredAt time.Time) {
	log := b.log.With().Int64("term", term.Fencing).Logger()
	ttl, margin, every := b.cfg.LeaseTTL, b.cfg.SafetyMargin, b.cfg.RenewInterval

	b.term.Store(term.Fencing)
	b.known.Store(term.Fencing)
	b.leading.Store(true)
	log.Info().Msg("rtm: leading: starting the bridge")
	bctx, cancelBridge := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.runBridge(bctx, term)
	}()
	stop := func() {
		// Not leading from this moment: the bridge may take a while to
		// return (a Redis call blocked on an unreachable server), but its
		// upstream connections close at once and nothing may read this
		// node as the leader meanwhile.
		b.leading.Store(false)
		cancelBridge()
		<-done
		b.mu.Lock()
		clear(b.states)
		clear(b.figures)
		clear(b.dirty)
		b.mu.Unlock()
	}

	rctx, cancelRenew := context.WithCancel(ctx)
	defer cancelRenew()
	results := make(chan renewResult, 1)
	renewing := false
	// valid: the bridge must be stopped by then unless a renewal succeeds.
	valid := acquiredAt.Add(ttl - margin)
	guard := time.NewTimer(valid.Sub(b.cfg.Now()))
	defer guard.Stop()
	next := time.NewTimer(every)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			rel, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := b.cfg.Lease.Release(rel, b.cfg.LeaseName, term); err != nil {
				log.Warn().Err(err).Msg("rtm: could not release the lease; it expires by itself")
			} else if err := b.cfg.Store.Signal(rel); err != nil {
				log.Warn().Err(err).Msg("rtm: lease released, but could not signal the other nodes")
			}
			cancel()
			log.Info().Msg("rtm: stopped the bridge and released the lease")
			return
		case <-guard.C:
			stop()
			log.Error().Dur("since_last_renewal_ms", b.cfg.Now().Sub(valid.Add(margin-ttl))).
				Msg("rtm: could not renew the lease in time: stopped the bridge before the lease can expire")
			return
		case <-next.C:
			if renewing {
				continue // its result resets the timer
			}
			renewing = true
			go func(start time.Time) {
				ok, err := b.cfg.Lease.Renew(rctx, b.cfg.LeaseName, term, ttl)
				results <- renewResult{start: start, ok: ok, err: err}
			}(b.cfg.Now())
		case r := <-results:
			renewing = false
			switch {
			case r.err == nil && r.ok:
				b.observeLease(term.Fencing)
				valid = r.start.Add(ttl - margin)
				guard.Reset(valid.Sub(b.cfg.Now()))
				next.Reset(every)
			case r.err == nil:
				stop()
				log.Warn().Msg("rtm: lease lost to another node: stopped the bridge")
				return
			default:
				left := valid.Sub(b.cfg.Now())
				log.Warn().Err(r.err).Dur("left_ms", left).Msg("rtm: lease renewal failed; retrying")
				next.Reset(max(min(every/3, left/2), 5*time.Millisecond))
			}
		}
	}
}
