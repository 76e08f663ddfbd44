// Package rtmsim is a stand-in RTM provider for development, tests and load
// tests: it serves the upstream WebSocket format of DESIGN.md ("RTM
// upstream") that package rtm consumes, generates events at a configurable
// rate and mix, drops connections at random, refuses expired sessions with
// 401, and offers a control API that tests use to inject events and read
// what happened. cmd/rtmsim wraps it in a command.
//
// # WebSocket endpoint
//
// Any path outside /control/ upgrades to a WebSocket for one profile, named
// by the query parameter profileId, or else by the last path segment
// ("/ws?profileId=p1" and "/ws/p1" both work). Before the upgrade the
// server answers 401 when the profile is marked expired (or, with
// RequireCookie, when the request has no Cookie header), and any status set
// with /control/refuse. Each event is one text frame:
//
//	{"id":"sim-42","type":"MessageSent","profileId":"p1","data":{"dialogId":"d3","messageId":"m42","fromId":"u7","text":"hello 42","createdAt":"2025-01-02T03:04:05.678Z"}}
//
// with data for MessageRead {dialogId, messageId, readAt} and for
// DialogLimitChanged {dialogId, limit, remaining}.
//
// # Control API
//
//	POST /control/emit        {profileId, type, data, id?} or {profileId, raw}: send to the profile's open connections -> {id, delivered}; 409 when none is open
//	GET  /control/connections [?profileId=]: every upgrade attempt: {id, time, profileId, cookie, status, closedAt?, closeReason?}
//	POST /control/expire      {profileId, expired}: answer 401 (or stop answering 401) from the next attempt on
//	POST /control/refuse      {profileId, status}: answer this status instead of upgrading (0: upgrade again)
//	POST /control/drop        {profileId}: close the profile's open connections -> {dropped}
//	GET  /control/sent        ?profileId=: events written, oldest first
//
// Times are RFC 3339 with nanoseconds. The same operations are methods of
// [Server] for in-process use.
package rtmsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/rs/zerolog"
)

// Event types.
const (
	MessageSent        = "MessageSent"
	MessageRead        = "MessageRead"
	DialogLimitChanged = "DialogLimitChanged"
)

// upgradeTimeout bounds writing the 101 response to a client.
const upgradeTimeout = 5 * time.Second

// Config configures [New]. The zero value serves connections and control
// requests but generates nothing.
type Config struct {
	// Profiles the generator emits events for (to their open connections).
	Profiles []string
	// Rate is events per second per profile. 0: no generated events.
	Rate float64
	// Mix weighs the generated types. Default MessageSent=8,
	// MessageRead=1, DialogLimitChanged=1.
	Mix map[string]int
	// DropRate is the probability per second that an open connection is
	// dropped (closed without a close frame).
	DropRate float64
	// Expired profiles are answered 401 on upgrade.
	Expired []string
	// RequireCookie answers 401 to an upgrade without a Cookie header.
	RequireCookie bool
	// Seed seeds the generator's randomness. 0: seeded from the time.
	Seed uint64
	// MaxRecords bounds the connection log and each profile's sent log.
	// Default 10000.
	MaxRecords int
	// Logger receives one line per connection. Zero value: disabled.
	Logger zerolog.Logger
	// Now is the clock for records and generated times. Default time.Now.
	Now func() time.Time
}

// Event is one upstream frame.
type Event struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	ProfileID string          `json:"profileId"`
	Data      json.RawMessage `json:"data"`
}

// Connection records one upgrade attempt.
type Connection struct {
	ID          int        `json:"id"`
	Time        time.Time  `json:"time"`
	ProfileID   string     `json:"profileId"`
	Cookie      string     `json:"cookie"`
	Status      int        `json:"status"` // 101 when upgraded
	ClosedAt    *time.Time `json:"closedAt,omitempty"`
	CloseReason string     `json:"closeReason,omitempty"`
}

// Server is the simulator; it is an http.Handler.
type Server struct {
	cfg   Config
	log   zerolog.Logger
	types []string // generator's weighted choice
	now   func() time.Time

	mu       sync.Mutex // guards the following fields
	rnd      *rand.Rand
	connSeq  int                  // last connection id
	eventSeq int                  // last generated event number
	conns    []*Connection        // log, oldest first (bounded)
	open     map[*wsConn]struct{} // upgraded and not closed
	sent     map[string][]Event   // by profile (bounded)
	expired  map[string]bool      // profile -> answer 401
	refuse   map[string]int       // profile -> status to answer
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// wsConn is one upgraded connection.
type wsConn struct {
	rec     *Connection // its record; guarded by Server.mu
	profile string
	conn    net.Conn
	wmu     sync.Mutex // serialises frame writes
}

// New returns a simulator and starts its generator and dropper goroutines
// (stopped by Close).
func New(cfg Config) (*Server, error) {
	if cfg.Rate < 0 || cfg.DropRate < 0 || cfg.DropRate > 1 {
		return nil, errors.New("rtmsim: rate must be >= 0 and drop rate within [0, 1]")
	}
	if len(cfg.Mix) == 0 {
		cfg.Mix = map[string]int{MessageSent: 8, MessageRead: 1, DialogLimitChanged: 1}
	}
	var types []string
	names := make([]string, 0, len(cfg.Mix))
	for t := range cfg.Mix {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		switch t {
		case MessageSent, MessageRead, DialogLimitChanged:
		default:
			return nil, fmt.Errorf("rtmsim: unknown event type %q in mix", t)
		}
		if cfg.Mix[t] < 0 {
			return nil, fmt.Errorf("rtmsim: negative weight for %s", t)
		}
		for range cfg.Mix[t] {
			types = append(types, t)
		}
	}
	if len(types) == 0 && cfg.Rate > 0 {
		return nil, errors.New("rtmsim: the mix has no positive weight")
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With().Str("component", "rtmsim").Logger(),
		types:   types,
		now:     cfg.Now,
		rnd:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		open:    make(map[*wsConn]struct{}),
		sent:    make(map[string][]Event),
		expired: make(map[string]bool),
		refuse:  make(map[string]int),
		stop:    make(chan struct{}),
	}
	for _, p := range cfg.Expired {
		s.expired[p] = true
	}
	if cfg.Rate > 0 {
		for _, p := range cfg.Profiles {
			s.wg.Go(func() { s.generate(p) })
		}
	}
	if cfg.DropRate > 0 {
		s.wg.Go(s.dropper)
	}
	return s, nil
}

// ParseMix parses "MessageSent=8,MessageRead=1,DialogLimitChanged=1".
func ParseMix(s string) (map[string]int, error) {
	m := make(map[string]int)
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("rtmsim: bad mix entry %q: want Type=weight", part)
		}
		m[strings.TrimSpace(k)] = n
	}
	return m, nil
}

// ListenAndServe serves on addr until ctx ends, then closes everything.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.log.Info().Str("addr", ln.Addr().String()).Msg("rtmsim: listening")
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	s.Close() // hijacked WebSockets are not closed by Shutdown
	return err
}

// Close stops the generator and closes every open connection. Idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stop)
	for c := range s.open {
		s.markClosed(c, "server closed")
		_ = c.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// ServeHTTP serves the control API under /control/ and the WebSocket
// endpoint everywhere else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/control/") {
		s.control(w, r)
		return
	}
	s.upgrade(w, r)
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	profile := r.URL.Query().Get("profileId")
	if profile == "" {
		profile = path.Base(r.URL.Path)
		if profile == "/" || profile == "." {
			profile = ""
		}
	}
	cookie := r.Header.Get("Cookie")
	if profile == "" {
		httpError(w, http.StatusBadRequest, "profileId is required (query parameter or last path segment)")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "closing")
		return
	}
	status := s.refuse[profile]
	switch {
	case status != 0:
	case s.expired[profile]:
		status = http.StatusUnauthorized
	case s.cfg.RequireCookie && cookie == "":
		status = http.StatusUnauthorized
	}
	if status != 0 {
		s.record(profile, cookie, status)
		s.mu.Unlock()
		s.log.Info().Str("profile", profile).Int("status", status).Msg("rtmsim: upgrade refused")
		httpError(w, status, "session refused")
		return
	}
	// The lock is held across the upgrade so that the record and the open
	// set are in place before the client can read 101: a client whose dial
	// returned is always listed and always reached by emit. The response is
	// a few hundred bytes on loopback, and upgradeTimeout bounds a client
	// that does not read it.
	conn, _, _, err := ws.HTTPUpgrader{Timeout: upgradeTimeout}.Upgrade(r, w)
	if err != nil {
		s.record(profile, cookie, http.StatusBadRequest)
		s.mu.Unlock()
		return
	}
	rec := s.record(profile, cookie, http.StatusSwitchingProtocols)
	c := &wsConn{rec: rec, profile: profile, conn: conn}
	s.open[c] = struct{}{}
	s.mu.Unlock()
	s.log.Info().Str("profile", profile).Int("conn", rec.ID).Msg("rtmsim: connected")

	reason := s.read(c)
	s.mu.Lock()
	s.markClosed(c, reason)
	s.mu.Unlock()
	_ = conn.Close()
	s.log.Info().Str("profile", profile).Int("conn", rec.ID).Str("reason", reason).Msg("rtmsim: closed")
}

// read serves the client side's frames (pings, close) until the connection
// ends, and says why it ended.
func (s *Server) read(c *wsConn) string {
	w := writerFunc(func(p []byte) (int, error) {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.conn.Write(p)
	})
	ctl := wsutil.ControlFrameHandler(w, ws.StateServerSide)
	rd := &wsutil.Reader{Source: c.conn, State: ws.StateServerSide, MaxFrameSize: 1 << 20, MaxMessageSize: 1 << 20, OnIntermediate: ctl}
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return "read: " + err.Error()
		}
		if hdr.OpCode.IsControl() {
			if err := ctl(hdr, rd); err != nil {
				var ce wsutil.ClosedError
				if errors.As(err, &ce) {
					return fmt.Sprintf("client closed: %d %s", ce.Code, ce.Reason)
				}
				return "control: " + err.Error()
			}
			continue
		}
		if err := rd.Discard(); err != nil {
			return "read: " + err.Error()
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// record appends a connection record. s.mu must be held.
func (s *Server) record(profile, cookie string, status int) *Connection {
	s.connSeq++
	rec := &Connection{ID: s.connSeq, Time: s.now(), ProfileID: profile, Cookie: cookie, Status: status}
	s.conns = append(s.conns, rec)
	if len(s.conns) > 2*s.cfg.MaxRecords {
		s.conns = append(s.conns[:0:0], s.conns[len(s.conns)-s.cfg.MaxRecords:]...)
	}
	return rec
}

// markClosed removes c from the open set and stamps its record once.
// s.mu must be held.
func (s *Server) markClosed(c *wsConn, reason string) {
	delete(s.open, c)
	if c.rec.ClosedAt == nil {
		t := s.now()
		c.rec.ClosedAt = &t
		c.rec.CloseReason = reason
	}
}

// Emit sends e to every open connection of e.ProfileID; an empty ID gets a
// fresh one, an empty Data becomes {}. It returns the id and how many
// connections it was written to; nothing is recorded when none.
func (s *Server) Emit(e Event) (id string, delivered int, err error) {
	if e.Type == "" || e.ProfileID == "" {
		return "", 0, errors.New("rtmsim: type and profileId are required")
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
	s.mu.Lock()
	if e.ID == "" {
		s.eventSeq++
		e.ID = "sim-" + strconv.Itoa(s.eventSeq)
	}
	s.mu.Unlock()
	frame, err := json.Marshal(e)
	if err != nil {
		return "", 0, fmt.Errorf("rtmsim: %w", err)
	}
	n := s.send(e.ProfileID, frame)
	if n > 0 {
		s.mu.Lock()
		s.addSent(e)
		s.mu.Unlock()
	}
	return e.ID, n, nil
}

// EmitRaw writes text as one frame to the profile's open connections
// (malformed frames for tests). It is not recorded in Sent.
func (s *Server) EmitRaw(profileID, text string) int {
	return s.send(profileID, []byte(text))
}

func (s *Server) send(profile string, frame []byte) int {
	s.mu.Lock()
	var targets []*wsConn
	for c := range s.open {
		if c.profile == profile {
			targets = append(targets, c)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, c := range targets {
		c.wmu.Lock()
		_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		err := wsutil.WriteServerText(c.conn, frame)
		c.wmu.Unlock()
		if err == nil {
			n++
		}
	}
	return n
}

// addSent records an event. s.mu must be held.
func (s *Server) addSent(e Event) {
	l := append(s.sent[e.ProfileID], e)
	if len(l) > s.cfg.MaxRecords {
		l = append(l[:0:0], l[len(l)-s.cfg.MaxRecords:]...)
	}
	s.sent[e.ProfileID] = l
}

// Connections returns the upgrade attempts so far (of one profile, or all
// when profileID is empty), oldest first.
func (s *Server) Connections(profileID string) []Connection {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Connection, 0, len(s.conns))
	for _, rec := range s.conns {
		if profileID == "" || rec.ProfileID == profileID {
			c := *rec
			if c.ClosedAt != nil {
				t := *c.ClosedAt
				c.ClosedAt = &t
			}
			out = append(out, c)
		}
	}
	return out
}

// Open counts the open connections of a profile (all when empty).
func (s *Server) Open(profileID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.open {
		if profileID == "" || c.profile == profileID {
			n++
		}
	}
	return n
}

// SetExpired makes upgrades of a profile answer 401 (or not).
func (s *Server) SetExpired(profileID string, expired bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if expired {
		s.expired[profileID] = true
	} else {
		delete(s.expired, profileID)
	}
}

// SetRefuse makes upgrades of a profile answer status (0: upgrade).
func (s *Server) SetRefuse(profileID string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.refuse, profileID)
	} else {
		s.refuse[profileID] = status
	}
}

// Drop closes the profile's open connections without a close frame and
// returns how many.
func (s *Server) Drop(profileID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.open {
		if c.profile == profileID {
			s.markClosed(c, "dropped")
			_ = c.conn.Close()
			n++
		}
	}
	return n
}

// Sent returns the events written to a profile's connections, oldest first.
func (s *Server) Sent(profileID string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.sent[profileID]...)
}

// generate emits Rate events per second to profile while it is connected.
func (s *Server) generate(profile string) {
	t := time.NewTicker(time.Duration(float64(time.Second) / s.cfg.Rate))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if s.Open(profile) == 0 {
			continue
		}
		_, _, _ = s.Emit(s.randomEvent(profile))
	}
}

func (s *Server) randomEvent(profile string) Event {
	s.mu.Lock()
	typ := s.types[s.rnd.IntN(len(s.types))]
	s.eventSeq++
	n := s.eventSeq
	dialog := "d" + strconv.Itoa(1+s.rnd.IntN(20))
	from := "u" + strconv.Itoa(1+s.rnd.IntN(50))
	limit := 100
	remaining := s.rnd.IntN(limit + 1)
	s.mu.Unlock()
	now := s.now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	var data any
	switch typ {
	case MessageSent:
		data = map[string]any{"dialogId": dialog, "messageId": "m" + strconv.Itoa(n), "fromId": from,
			"text": "hello " + strconv.Itoa(n), "createdAt": now}
	case MessageRead:
		data = map[string]any{"dialogId": dialog, "messageId": "m" + strconv.Itoa(max(1, n-1)), "readAt": now}
	default:
		data = map[string]any{"dialogId": dialog, "limit": limit, "remaining": remaining}
	}
	b, _ := json.Marshal(data)
	return Event{ID: "sim-" + strconv.Itoa(n), Type: typ, ProfileID: profile, Data: b}
}

// dropper closes each open connection with probability DropRate per second
// (checked ten times a second).
func (s *Server) dropper() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	// Ten independent checks make up the per-second probability:
	// 1-(1-p)^(1/10) each, so DropRate 1 drops within the second, always.
	p := 1 - math.Pow(1-s.cfg.DropRate, 0.1)
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		for c := range s.open {
			if s.rnd.Float64() < p {
				s.markClosed(c, "dropped (drop rate)")
				_ = c.conn.Close()
			}
		}
		s.mu.Unlock()
	}
}

// control serves /control/*.
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ProfileID string          `json:"profileId"`
		Type      string          `json:"type"`
		Data      json.RawMessage `json:"data"`
		ID        string          `json:"id"`
		Raw       *string         `json:"raw"`
		Expired   bool            `json:"expired"`
		Status    int             `json:"status"`
	}
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
			httpError(w, http.StatusBadRequest, "body must be a JSON object: "+err.Error())
			return
		}
		if body.ProfileID == "" {
			httpError(w, http.StatusBadRequest, "profileId is required")
			return
		}
	}
	route := r.Method + " " + r.URL.Path
	switch route {
	case "POST /control/emit":
		var (
			id  string
			n   int
			err error
		)
		if body.Raw != nil {
			n = s.EmitRaw(body.ProfileID, *body.Raw)
		} else {
			id, n, err = s.Emit(Event{ID: body.ID, Type: body.Type, ProfileID: body.ProfileID, Data: body.Data})
		}
		switch {
		case err != nil:
			httpError(w, http.StatusBadRequest, err.Error())
		case n == 0:
			httpError(w, http.StatusConflict, "no open connection for profile "+body.ProfileID)
		default:
			writeJSON(w, http.StatusOK, map[string]any{"id": id, "delivered": n})
		}
	case "GET /control/connections":
		writeJSON(w, http.StatusOK, s.Connections(r.URL.Query().Get("profileId")))
	case "POST /control/expire":
		s.SetExpired(body.ProfileID, body.Expired)
		writeJSON(w, http.StatusOK, map[string]any{"profileId": body.ProfileID, "expired": body.Expired})
	case "POST /control/refuse":
		s.SetRefuse(body.ProfileID, body.Status)
		writeJSON(w, http.StatusOK, map[string]any{"profileId": body.ProfileID, "status": body.Status})
	case "POST /control/drop":
		writeJSON(w, http.StatusOK, map[string]any{"dropped": s.Drop(body.ProfileID)})
	case "GET /control/sent":
		p := r.URL.Query().Get("profileId")
		if p == "" {
			httpError(w, http.StatusBadRequest, "profileId is required")
			return
		}
		writeJSON(w, http.StatusOK, s.Sent(p))
	default:
		httpError(w, http.StatusNotFound, "unknown control route "+route)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": http.StatusText(status), "message": msg}})
}
