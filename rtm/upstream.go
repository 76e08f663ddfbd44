package rtm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/lease"
)

// profileConn is the leader's goroutine for one profile's upstream.
type profileConn struct {
	id      string
	version int64  // session version it was started with
	cookie  string // Cookie header it uses
	cancel  context.CancelFunc
	done    chan struct{}
}

func (c *profileConn) stop() {
	c.cancel()
	<-c.done
}

// fullResyncEvery is how many ResyncIntervals the leader goes at most
// without rereading the sessions and recounting the states, whatever the
// sessions' version says: a safety net for a version that went back to an
// earlier value (Redis lost its data) together with a lost change signal,
// and for counts left off by writers of an older version.
const fullResyncEvery = 12

// runBridge is the leader's work for one term: keep one upstream connection
// per stored session until ctx ends, then close them all. It reads every
// stored session when the term starts, on every change signal, when the
// sessions' version moved (checked every ResyncInterval, one GET) and at
// least every fullResyncEvery intervals; an idle leader reads nothing else.
func (b *Bridge) runBridge(ctx context.Context, term lease.Term) {
	conns := make(map[string]*profileConn)
	defer func() {
		for _, c := range conns {
			c.cancel() // all at once: closing is what matters, not the order
		}
		for _, c := range conns {
			<-c.done
		}
	}()
	resync := time.NewTicker(b.cfg.ResyncInterval)
	defer resync.Stop()
	cleaned := false
	b.seedFigures(ctx)
	var (
		read      = true // reread the sessions now
		readVer   int64  // the sessions' version when they were last read
		verKnown  bool   // readVer holds a version read before a successful Sessions
		sinceFull int    // resync ticks since the sessions were last read
		ticks     int    // resync ticks this term
	)
	for {
		if read {
			ver, verErr := b.cfg.Store.SessionsVersion(ctx) // before Sessions: a change in between is read again
			sessions, err := b.cfg.Store.Sessions(ctx)
			if err == nil {
				readVer, verKnown, sinceFull = ver, verErr == nil, 0
				b.reconcile(ctx, term, conns, sessions)
				if !cleaned {
					cleaned = b.dropStaleStates(ctx, sessions) == nil && b.recountStates(ctx) == nil
				}
			} else if ctx.Err() == nil {
				verKnown = false
				b.sampled.Warn().Err(err).Msg("rtm: cannot read the profile sessions; retrying")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-b.bridgeWake:
			read = true
		case <-resync.C:
			b.flushFigures(ctx)
			if ticks++; ticks%fullResyncEvery == 0 && cleaned {
				_ = b.recountStates(ctx)
			}
			if sinceFull++; sinceFull >= fullResyncEvery {
				read = true
				continue
			}
			ver, err := b.cfg.Store.SessionsVersion(ctx)
			read = err != nil || !verKnown || ver != readVer
		}
	}
}

// recountStates has the store rebuild its counts by state.
func (b *Bridge) recountStates(ctx context.Context) error {
	err := b.cfg.Store.RecountStates(ctx)
	if err != nil && ctx.Err() == nil {
		b.sampled.Warn().Err(err).Msg("rtm: cannot recount the profile states; retrying")
	}
	return err
}

// reconcile starts, restarts and stops profile connections to match sessions.
func (b *Bridge) reconcile(ctx context.Context, term lease.Term, conns map[string]*profileConn, sessions map[string]Session) {
	for id, s := range sessions {
		c := conns[id]
		if c != nil && c.version == s.Version {
			continue
		}
		cookie, err := cookieHeader(s.Data)
		if err != nil {
			b.sampled.Error().Err(err).Str("profile", id).Msg("rtm: stored session unusable; not connecting")
			if c != nil {
				c.stop()
				delete(conns, id)
			}
			continue
		}
		if c != nil {
			if c.cookie == cookie && b.localState(id) == StateConnected {
				c.version = s.Version // same cookies and connected: keep the connection
				continue
			}
			c.stop()
		}
		conns[id] = b.startProfile(ctx, term, id, s.Version, cookie)
	}
	for id, c := range conns {
		if _, ok := sessions[id]; ok {
			continue
		}
		c.stop()
		delete(conns, id)
		b.mu.Lock()
		delete(b.states, id)
		delete(b.figures, id)
		delete(b.dirty, id)
		b.mu.Unlock()
		if err := b.cfg.Store.DeleteState(ctx, id); err != nil && ctx.Err() == nil {
			b.sampled.Warn().Err(err).Str("profile", id).Msg("rtm: cannot clear a deleted profile's state")
		}
		b.log.Info().Str("profile", id).Msg("rtm: profile deleted: upstream connection dropped")
	}
}

// dropStaleStates removes reported states of profiles without a session
// (left by an earlier leader).
func (b *Bridge) dropStaleStates(ctx context.Context, sessions map[string]Session) error {
	states, err := b.cfg.Store.States(ctx)
	if err != nil {
		return err
	}
	for id := range states {
		if _, ok := sessions[id]; !ok {
			if err := b.cfg.Store.DeleteState(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Bridge) localState(id string) State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.states[id]
}

func (b *Bridge) startProfile(ctx context.Context, term lease.Term, id string, version int64, cookie string) *profileConn {
	pctx, cancel := context.WithCancel(ctx)
	c := &profileConn{id: id, version: version, cookie: cookie, cancel: cancel, done: make(chan struct{})}
	b.mu.Lock()
	if b.states[id] != StateReconnecting {
		f := b.figures[id]
		f.Since = b.cfg.Now()
		b.figures[id] = f
	}
	b.states[id] = StateReconnecting // connecting; published once the outcome is known
	b.mu.Unlock()
	go func() {
		defer close(c.done)
		b.runProfile(pctx, term, c)
	}()
	return c
}

// runProfile keeps one profile connected until ctx ends: dial, read, and on
// failure wait per the backoff policy; a 401/403 upgrade answer parks it in
// session_expired until the session is replaced (the reconciler then starts
// a new runProfile).
func (b *Bridge) runProfile(ctx context.Context, term lease.Term, c *profileConn) {
	log := b.log.With().Str("profile", c.id).Logger()
	failures := 0
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			b.noteReconnect(c.id)
		}
		conn, br, err := b.dial(ctx, c)
		if ctx.Err() != nil {
			if conn != nil {
				_ = conn.Close()
			}
			return
		}
		if err != nil {
			var se ws.StatusError
			if errors.As(err, &se) && (int(se) == http.StatusUnauthorized || int(se) == http.StatusForbidden) {
				log.Warn().Int("status", int(se)).Msg("rtm: session expired: waiting for a new session")
				b.setState(ctx, term, c.id, StateSessionExpired, -1)
				<-ctx.Done()
				return
			}
			failures++
			d := b.cfg.Backoff.Delay(failures)
			b.sampled.Warn().Err(err).Str("profile", c.id).Int("failures", failures).Dur("retry_in_ms", d).
				Msg("rtm: upstream connect failed")
			b.setState(ctx, term, c.id, StateReconnecting, d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		// From here the connection closes the moment ctx ends, whatever this
		// goroutine is doing: a Redis write (setState, dedupe) may block past
		// the lease with Redis unreachable, and the split-brain guard must
		// not wait for it.
		w := lockedWriter{mu: new(sync.Mutex), conn: conn}
		stopClose := context.AfterFunc(ctx, func() { closeUpstream(conn, w) })
		connected := b.cfg.Now()
		log.Info().Msg("rtm: upstream connected")
		b.setState(ctx, term, c.id, StateConnected, -1)
		err = b.readLoop(ctx, term, c.id, conn, br, w)
		stopClose()
		if ctx.Err() != nil {
			return
		}
		if b.cfg.Now().Sub(connected) >= b.cfg.Backoff.StableAfter {
			failures = 0
		}
		failures++
		d := b.cfg.Backoff.Delay(failures)
		log.Warn().Err(err).Dur("retry_in_ms", d).Msg("rtm: upstream connection lost")
		b.setState(ctx, term, c.id, StateReconnecting, d)
		if !sleep(ctx, d) {
			return
		}
	}
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *Bridge) dial(ctx context.Context, c *profileConn) (net.Conn, *bufio.Reader, error) {
	h := b.cfg.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Cookie", c.cookie)
	d := ws.Dialer{
		Timeout:   b.cfg.DialTimeout,
		Header:    ws.HandshakeHeaderHTTP(h),
		NetDial:   b.cfg.NetDial,
		TLSConfig: b.cfg.TLSConfig,
	}
	conn, br, _, err := d.Dial(ctx, b.profileURL(c.id))
	return conn, br, err
}

// lockedWriter serialises whole-frame writes: the read loop answers pings
// and closes, the pinger pings, the stopper sends a close frame.
type lockedWriter struct {
	mu   *sync.Mutex
	conn net.Conn
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conn.Write(p)
}

// clientFrame encodes one masked frame (RFC 6455 section 5.3: every frame a
// client sends is masked) so that it goes out in a single write.
func clientFrame(f ws.Frame) []byte {
	var buf bytes.Buffer
	_ = ws.WriteFrame(&buf, ws.MaskFrame(f))
	return buf.Bytes()
}

// closeUpstream ends an upstream connection when the bridge stops: a
// courtesy close frame, unless a write is blocked (closing at once is what
// the split-brain guard needs), then the close.
func closeUpstream(conn net.Conn, w lockedWriter) {
	if w.mu.TryLock() {
		_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = conn.Write(clientFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "leader stopping"))))
		w.mu.Unlock()
	}
	_ = conn.Close()
}

// readLoop reads upstream messages until the connection fails or ctx ends
// (the caller closes it at once then, see closeUpstream); w serialises its
// writes with the caller's.
func (b *Bridge) readLoop(ctx context.Context, term lease.Term, profileID string, conn net.Conn, br *bufio.Reader, w lockedWriter) error {
	defer conn.Close()

	pingDone := make(chan struct{})
	defer close(pingDone)
	go func() {
		t := time.NewTicker(b.cfg.PingInterval)
		defer t.Stop()
		ping := clientFrame(ws.NewPingFrame(nil))
		for {
			select {
			case <-pingDone:
				return
			case <-t.C:
				_ = conn.SetWriteDeadline(time.Now().Add(b.cfg.PingInterval))
				if _, err := w.Write(ping); err != nil {
					_ = conn.Close()
					return
				}
			}
		}
	}()

	var src io.Reader = conn
	if br != nil {
		src = br
		defer ws.PutReader(br)
	}
	rd := &wsutil.Reader{
		Source:         src,
		State:          ws.StateClientSide,
		CheckUTF8:      true,
		MaxFrameSize:   b.cfg.MaxFrameSize,
		MaxMessageSize: b.cfg.MaxFrameSize,
	}
	ctl := wsutil.ControlFrameHandler(w, ws.StateClientSide)
	rd.OnIntermediate = ctl
	idle := 2 * b.cfg.PingInterval
	for {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		hdr, err := rd.NextFrame()
		if err != nil {
			return err
		}
		if hdr.OpCode.IsControl() {
			if err := ctl(hdr, rd); err != nil {
				return err
			}
			continue
		}
		if hdr.OpCode != ws.OpText && hdr.OpCode != ws.OpBinary {
			if err := rd.Discard(); err != nil {
				return err
			}
			continue
		}
		msg, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		b.handleFrame(ctx, term, profileID, msg)
	}
}

// handleFrame maps one upstream message, drops it if it was already
// published (cluster-wide, DedupeTTL), and publishes it.
func (b *Bridge) handleFrame(ctx context.Context, term lease.Term, profileID string, msg []byte) {
	b.eventsIn.Add(1)
	b.noteEvent(profileID)
	m, err := mapFrame(profileID, msg, b.cfg.Now())
	switch {
	case err == nil:
	case errors.Is(err, errOwnMessage):
		b.own.Add(1)
		return
	case errors.Is(err, errUnknownType):
		b.unknown.Add(1)
		b.sampled.Warn().Err(err).Str("profile", profileID).Str("id", m.id).Msg("rtm: upstream event of an unknown type ignored")
		return
	default:
		b.malformed.Add(1)
		b.sampled.Warn().Err(err).Str("profile", profileID).Int("bytes", len(msg)).Msg("rtm: malformed upstream frame ignored")
		return
	}
	first, err := b.cfg.Store.MarkSeen(ctx, seenKey(profileID, m.id), b.cfg.DedupeTTL)
	if err != nil {
		if ctx.Err() == nil {
			b.failed.Add(1)
			b.sampled.Error().Err(err).Str("profile", profileID).Str("id", m.id).Msg("rtm: cannot check an upstream event for duplicates; dropped")
		}
		return
	}
	if !first {
		b.duplicates.Add(1)
		return
	}
	if b.publish(ctx, term, profileID, m.event, m.data) {
		b.eventsOut.Add(1)
	}
}

// seenKey scopes an upstream id to its profile (two operated profiles in
// one dialog both receive the message, and each should toast). The length
// prefix keeps it unambiguous whatever the ids contain.
func seenKey(profileID, eventID string) string {
	return strconv.Itoa(len(profileID)) + ":" + profileID + ":" + eventID
}

// publish sends one client event to the profile's channel in the term's
// envelope.
func (b *Bridge) publish(ctx context.Context, term lease.Term, profileID, event string, payload []byte) bool {
	err := b.cfg.Bus.Publish(ctx, bus.Profile(profileID), event, wrap(term.Fencing, payload))
	if err != nil {
		if ctx.Err() == nil {
			b.failed.Add(1)
			b.sampled.Error().Err(err).Str("profile", profileID).Str("event", event).Msg("rtm: cannot publish")
		}
		return false
	}
	return true
}

// setState records a profile's state (and figures) here and in the store,
// then publishes rtm_status (retryIn >= 0 adds retryInMs): stored first, so
// a node that reads the state for a connecting client after the event was
// published reads the new one. Nothing happens once ctx ended: the profile
// was dropped or leadership lost.
func (b *Bridge) setState(ctx context.Context, term lease.Term, profileID string, st State, retryIn time.Duration) {
	if ctx.Err() != nil {
		return
	}
	b.mu.Lock()
	f := b.figures[profileID]
	if b.states[profileID] != st || f.Since.IsZero() {
		f.Since = b.cfg.Now()
		b.figures[profileID] = f
		b.dirty[profileID] = struct{}{} // flushFigures may have taken the figures just before
	}
	b.states[profileID] = st
	b.mu.Unlock()
	if err := b.cfg.Store.SetState(ctx, profileID, st); err != nil && ctx.Err() == nil {
		b.sampled.Warn().Err(err).Str("profile", profileID).Msg("rtm: cannot store a profile state")
	}
	if err := b.cfg.Store.SetFigures(ctx, map[string]Figures{profileID: f}); err != nil && ctx.Err() == nil {
		b.sampled.Warn().Err(err).Str("profile", profileID).Msg("rtm: cannot store a profile's figures")
	}
	p := statusPayload{ProfileID: profileID, State: st}
	if retryIn >= 0 {
		ms := retryIn.Milliseconds()
		p.RetryInMs = &ms
	}
	data, _ := json.Marshal(p)
	b.publish(ctx, term, profileID, EventStatus, data)
}
