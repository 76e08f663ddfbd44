package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/socketio"
)

// acceptLoop accepts connections until the listener closes and upgrades
// each in a goroutine of its own. It never waits for a handshake: the
// handshake table bounds them by closing older ones (see handshakeTable),
// and UpgradeTimeout bounds each.
func (srv *server) acceptLoop(ln net.Listener) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if srv.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE...): back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			srv.hotLog.Warn().Err(err).Dur("backoff_ms", backoff).Msg("accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		srv.metrics.accepted.Inc()
		srv.handshakes.add(nc, srv.handshake)
	}
}

// refusal is an HTTP refusal on upgrade with the JSON body of PROTOCOL.md
// section 1: {"error":{"code","message","retryAfterMs"?}}.
type refusal struct {
	status int
	reason string // label of realtime_upgrade_failures_total: the code in lower case
	body   []byte
}

func (r *refusal) Error() string { return string(r.body) }

// response is the complete HTTP response for the refusal, JSON typed. It
// allows any origin to read it, so that a browser trying long-polling shows
// the message naming the fix instead of a bare CORS error.
func (r *refusal) response() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"Access-Control-Allow-Origin: *\r\nConnection: close\r\n",
		r.status, http.StatusText(r.status), len(r.body))
	if r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable {
		b.WriteString("Retry-After: 1\r\n")
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	return b.Bytes()
}

// refusingWriter passes gobwas's handshake writes through until the node
// refuses the request; then it swallows gobwas's plain-text answer so the
// node can write its JSON one.
type refusingWriter struct {
	w       io.Writer
	refused **refusal
}

func (rw refusingWriter) Write(p []byte) (int, error) {
	if *rw.refused != nil {
		return len(p), nil
	}
	// A refusal gobwas decided itself (bad method, missing upgrade headers,
	// bad version): replace its plain-text answer with the JSON one. The
	// only method served is GET with an upgrade, so a POST (polling) gets
	// the same answer as a polling GET.
	if st, ok := bytes.CutPrefix(p, []byte("HTTP/1.1 ")); ok && len(st) >= 3 && !bytes.HasPrefix(st, []byte("101")) {
		status, _ := strconv.Atoi(string(st[:3]))
		_, reason, _ := bytes.Cut(p, []byte("\r\n\r\n"))
		if status == http.StatusMethodNotAllowed {
			*rw.refused = pollingRefusal
		} else {
			*rw.refused = rejection(status, "BAD_HANDSHAKE", "not a WebSocket upgrade: "+string(bytes.TrimSpace(reason)), 0)
		}
		return len(p), nil
	}
	return rw.w.Write(p)
}

var pollingRefusal = rejection(http.StatusBadRequest, "TRANSPORT_UNSUPPORTED",
	"only the websocket transport is served: connect with io(url, { transports: ['websocket'] })", 0)

func rejection(status int, code, message string, retryAfter time.Duration) *refusal {
	body := struct {
		Error struct {
			Code         string   `json:"code"`
			Message      string   `json:"message"`
			RetryAfterMs int64    `json:"retryAfterMs,omitempty"`
			Transports   []string `json:"transports,omitempty"`
		} `json:"error"`
	}{}
	body.Error.Code, body.Error.Message = code, message
	if retryAfter > 0 {
		body.Error.RetryAfterMs = max(retryAfter.Milliseconds(), 1)
	}
	if code == "TRANSPORT_UNSUPPORTED" {
		body.Error.Transports = []string{"websocket"}
	}
	b, _ := json.Marshal(body)
	return &refusal{status: status, reason: strings.ToLower(code), body: b}
}

// Upgrade failure reasons beyond the refusal codes: the label values of
// realtime_upgrade_failures_total are these and the codes of rejection in
// lower case, all listed in upgradeFailureReasons.
const (
	failHeaderTooLarge = "header_too_large" // request line and headers over MaxHeaderBytes: 431
	failBadHandshake   = "bad_handshake"    // not a WebSocket upgrade, or malformed: 400
	failTimeout        = "timeout"          // not upgraded within UpgradeTimeout
	failShed           = "shed"             // closed to make room under a pending-handshake cap
	failClosed         = "closed"           // the client went away first
)

// upgradeFailureReasons is the fixed label set of
// realtime_upgrade_failures_total, every series created at start.
var upgradeFailureReasons = []string{
	failHeaderTooLarge, failBadHandshake, failTimeout, failShed, failClosed,
	"not_found", "bad_request", "transport_unsupported", "unsupported_protocol_version",
	strings.ToLower(codeDraining), strings.ToLower(codeNodeFull),
	strings.ToLower(codeRateLimited), strings.ToLower(codeUnavailable),
}

// Lingering after a refusal: the refused request's unread bytes are read
// and dropped, this long and this much at most, after the answer and a FIN,
// so the client reads the answer instead of a reset (RFC 9112 section 9.6).
const (
	refusalLinger      = time.Second
	refusalLingerBytes = 64 << 10
)

var xForwardedFor = []byte("X-Forwarded-For")

// handshake upgrades one accepted connection: path, query and headers are
// read in the upgrade hooks (no http.Request), through a reader that stops
// at MaxHeaderBytes, and admission is decided before the 101.
func (srv *server) handshake(p *pendingHandshake) {
	nc := p.nc
	var raw syscall.RawConn
	if srv.tlsConf != nil {
		tc := tls.Server(nc, srv.tlsConf)
		nc = tc
	} else if tcp, ok := nc.(*net.TCPConn); ok {
		raw, _ = tcp.SyscallConn()
	}
	_ = nc.SetDeadline(time.Now().Add(srv.cfg.UpgradeTimeout))

	var (
		token     string
		forwarded []byte // X-Forwarded-For values, read only from a trusted proxy
		client    = p.peer.Addr()
		fromProxy = srv.proxies.contains(client)
		admitted  bool // holds a slot under the node cap (srv.upgrading)
		refused   *refusal
	)
	refuse := func(r *refusal) error {
		if r == nil {
			return nil
		}
		refused = r
		return ws.RejectConnectionError(ws.RejectionStatus(r.status), ws.RejectionReason(string(r.body)))
	}
	u := ws.Upgrader{
		OnRequest: func(uri []byte) error {
			return refuse(srv.checkRequest(uri, &token))
		},
		OnHeader: func(key, value []byte) error {
			switch {
			case token == "" && bytes.EqualFold(key, []byte("Authorization")):
				if v, ok := bytes.CutPrefix(value, []byte("Bearer ")); ok {
					token = string(bytes.TrimSpace(v))
				}
			case fromProxy && bytes.EqualFold(key, xForwardedFor):
				if len(forwarded) > 0 {
					forwarded = append(forwarded, ',')
				}
				forwarded = append(forwarded, value...) // value is gobwas's buffer: copy
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			client = srv.proxies.clientAddr(client, forwarded)
			if r := srv.admit(client.String()); r != nil {
				srv.live.record(liveEvent{Kind: liveRefused, Code: strings.ToUpper(r.reason), Remote: client.String(), Detail: "upgrade refused"})
				return nil, refuse(r)
			}
			admitted = true
			return ws.HandshakeHeaderString(""), nil
		},
	}
	header := &io.LimitedReader{R: nc, N: int64(srv.cfg.MaxHeaderBytes)}
	_, err := u.Upgrade(struct {
		io.Reader
		io.Writer
	}{header, refusingWriter{nc, &refused}})
	if err == nil && !srv.handshakes.upgraded(p) {
		err = errShed
	}
	if err != nil {
		if admitted {
			srv.upgrading.Add(-1)
		}
		srv.failUpgrade(p, nc, err, refused, header.N <= 0, client)
		return
	}
	defer srv.handshakes.done(p)
	_ = nc.SetDeadline(time.Time{})

	now := srv.cfg.Now()
	c := &conn{
		id:         srv.nextID.Add(1),
		sid:        srv.newID(),
		nc:         nc,
		rc:         raw,
		srv:        srv,
		born:       now,
		remoteAddr: remoteForLogs(p.peer, client),
	}
	c.sess.upgradeToken = token
	c.pingSentAt.Store(now.UnixNano())
	// The open packet is queued before anything is read, so it precedes
	// every answer; the connection becomes visible to closers (register)
	// only once its reader holds it.
	c.send(textFrame(func(dst []byte) []byte {
		return socketio.AppendOpen(dst, socketio.Open{SID: c.sid, PingInterval: srv.cfg.PingInterval,
			PingTimeout: srv.cfg.PingTimeout, MaxPayload: srv.cfg.Limits.MaxFrame})
	}))
	if err := srv.reader.add(c); err != nil {
		if !c.isClosed() {
			srv.log.Error().Err(err).Msg("register connection for reading")
		}
		c.close(reasonReadError)
		srv.upgrading.Add(-1)
		return
	}
	srv.register(c)
	srv.upgrading.Add(-1) // registered: counted by connCount now
}

// errShed ends a handshake whose connection the handshake table closed.
var errShed = errors.New("node: handshake shed under a pending-handshake cap")

// failUpgrade answers a failed handshake when an answer can help (the JSON
// refusal, 431 for an oversized request, 400 for a malformed one), closes
// the connection and counts the failure by reason. overLimit reports that
// the request reached MaxHeaderBytes unfinished.
func (srv *server) failUpgrade(p *pendingHandshake, nc net.Conn, err error, refused *refusal, overLimit bool, client netip.Addr) {
	var reason string
	answer := refused
	switch {
	case srv.handshakes.shedFor(p) != "":
		reason, answer = failShed, nil
	case refused != nil:
		reason = refused.reason
	case overLimit:
		reason = failHeaderTooLarge
		answer = rejection(http.StatusRequestHeaderFieldsTooLarge, "HEADER_TOO_LARGE",
			fmt.Sprintf("the upgrade request line and headers exceed %d bytes", srv.cfg.MaxHeaderBytes), 0)
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason = failTimeout
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		reason = failClosed
	default: // a request line gobwas could not parse, a TLS handshake that failed
		reason = failBadHandshake
		answer = rejection(http.StatusBadRequest, "BAD_HANDSHAKE", "malformed HTTP request", 0)
	}
	if answer != nil {
		if _, werr := nc.Write(answer.response()); werr == nil {
			lingerClose(nc)
		}
	}
	_ = nc.Close()
	if cap := srv.handshakes.done(p); cap != "" {
		reason = failShed // shed while answering
	}
	srv.metrics.handshakeCounts.failed(reason)
	srv.log.Debug().Err(err).Str("reason", reason).Str("remote", remoteForLogs(p.peer, client)).Msg("upgrade failed")
}

// lingerClose half-closes nc after a refusal and reads what the client still
// sends, bounded by refusalLinger and refusalLingerBytes, before the caller
// closes it: closing with unread bytes would send a reset that can destroy
// the answer before the client reads it.
func lingerClose(nc net.Conn) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = nc.SetReadDeadline(time.Now().Add(refusalLinger))
	_, _ = io.CopyN(io.Discard, nc, refusalLingerBytes)
}

// remoteForLogs is the address logs show for a connection: the TCP peer, or
// the client a trusted proxy forwarded for, with the proxy beside it.
func remoteForLogs(peer netip.AddrPort, client netip.Addr) string {
	if client == peer.Addr() {
		return peer.String()
	}
	return client.String() + " via " + peer.String()
}

// checkRequest validates the upgrade request line: the Engine.IO path,
// EIO=4, the websocket transport (polling is refused with a JSON body naming
// the fix) and an optional token query parameter.
func (srv *server) checkRequest(uri []byte, token *string) *refusal {
	path, rawQuery, _ := strings.Cut(string(uri), "?")
	if path != "/socket.io/" && path != "/socket.io" {
		return rejection(http.StatusNotFound, "NOT_FOUND", "the Socket.IO endpoint is /socket.io/", 0)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return rejection(http.StatusBadRequest, "BAD_REQUEST", "malformed query string", 0)
	}
	if t := q.Get("transport"); t != "websocket" {
		return pollingRefusal
	}
	if v := q.Get("EIO"); v != "4" {
		return rejection(http.StatusBadRequest, "UNSUPPORTED_PROTOCOL_VERSION",
			"Engine.IO protocol version 4 (socket.io-client v3 or v4) is required", 0)
	}
	*token = q.Get("token")
	return nil
}

// admit applies the refusals that time cures (PROTOCOL.md section 1):
// DRAINING, NODE_FULL, RATE_LIMITED and UNAVAILABLE, as HTTP statuses. ip is
// the client's address (see trustedProxies.clientAddr). When it admits, it
// holds a slot under the node cap in srv.upgrading until the connection is
// registered (or the upgrade fails); handshakes still reading their headers
// hold none.
func (srv *server) admit(ip string) (r *refusal) {
	if srv.draining.Load() {
		srv.metrics.refused.WithLabelValues(codeDraining).Inc()
		return rejection(http.StatusServiceUnavailable, codeDraining, "this node is shutting down; reconnect", 0)
	}
	if n := srv.upgrading.Add(1); srv.connCount()+int(n) > srv.cfg.Limits.MaxConnections {
		srv.upgrading.Add(-1)
		srv.metrics.refused.WithLabelValues(codeNodeFull).Inc()
		return rejection(http.StatusServiceUnavailable, codeNodeFull, "this node is at its connection cap; reconnect", time.Second)
	}
	defer func() {
		if r != nil {
			srv.upgrading.Add(-1)
		}
	}()
	if srv.engineDown.Load() {
		srv.metrics.refused.WithLabelValues(codeUnavailable).Inc()
		return rejection(http.StatusServiceUnavailable, codeUnavailable, "the cluster cannot check limits right now; reconnect", time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), srv.engineTimeout())
	defer cancel()
	res, err := srv.cfg.Engines.Limiter.Allow(ctx, "connect:"+ip,
		limits.Limit{Policy: limits.GCRA, N: srv.cfg.Limits.Connects, Window: srv.cfg.Limits.Window})
	if err != nil {
		srv.metrics.refused.WithLabelValues(codeUnavailable).Inc()
		srv.hotLog.Warn().Err(err).Msg("connection rate limit unavailable; refusing")
		return rejection(http.StatusServiceUnavailable, codeUnavailable, "the cluster cannot check limits right now; reconnect", time.Second)
	}
	if !res.Allowed {
		srv.metrics.refused.WithLabelValues(codeRateLimited).Inc()
		srv.metrics.rateLimited.WithLabelValues("connect").Inc()
		return rejection(http.StatusTooManyRequests, codeRateLimited, "too many connection attempts from this address", res.RetryAfter)
	}
	return nil
}
