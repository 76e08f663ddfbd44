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
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/socketio"
)

// maxPendingUpgrades bounds concurrent handshakes (each has a goroutine).
const maxPendingUpgrades = 1024

// acceptLoop accepts connections until the listener closes, upgrading each in
// a short-lived goroutine bounded by UpgradeTimeout.
func (srv *server) acceptLoop(ln net.Listener) {
	sem := make(chan struct{}, maxPendingUpgrades)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if srv.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failure (EMFILE...): back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			srv.hotLog.Warn().Err(err).Dur("backoff", backoff).Msg("accept failed")
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		sem <- struct{}{}
		srv.pending.Add(1)
		go func() {
			defer func() { srv.pending.Add(-1); <-sem }()
			srv.handshake(nc)
		}()
	}
}

// refusal is an HTTP refusal on upgrade with the JSON body of PROTOCOL.md
// section 1: {"error":{"code","message","retryAfterMs"?}}.
type refusal struct {
	status int
	body   []byte
}

func (r *refusal) Error() string { return string(r.body) }

// response is the complete HTTP response for the refusal, JSON typed.
func (r *refusal) response() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n",
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
	return &refusal{status: status, body: b}
}

// handshake upgrades one raw connection: path, query and headers are read in
// the upgrade hooks (no http.Request), admission is decided before the 101.
func (srv *server) handshake(nc net.Conn) {
	remoteIP := hostOf(nc.RemoteAddr())
	var raw syscall.RawConn
	if srv.tlsConf != nil {
		tc := tls.Server(nc, srv.tlsConf)
		nc = tc
	} else if tcp, ok := nc.(*net.TCPConn); ok {
		raw, _ = tcp.SyscallConn()
	}
	_ = nc.SetDeadline(time.Now().Add(srv.cfg.UpgradeTimeout))

	var token string
	var refused *refusal
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
			if token == "" && bytes.EqualFold(key, []byte("Authorization")) {
				if v, ok := bytes.CutPrefix(value, []byte("Bearer ")); ok {
					token = string(bytes.TrimSpace(v))
				}
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if r := srv.admit(remoteIP); r != nil {
				return nil, refuse(r)
			}
			return ws.HandshakeHeaderString(""), nil
		},
	}
	if _, err := u.Upgrade(struct {
		io.Reader
		io.Writer
	}{nc, refusingWriter{nc, &refused}}); err != nil {
		if refused != nil {
			_, _ = nc.Write(refused.response())
		}
		_ = nc.Close()
		srv.metrics.upgradeFailures.Inc()
		srv.log.Debug().Err(err).Str("remote", remoteIP).Msg("upgrade refused")
		return
	}
	_ = nc.SetDeadline(time.Time{})

	now := srv.cfg.Now()
	c := &conn{
		id:   srv.nextID.Add(1),
		sid:  srv.newID(),
		nc:   nc,
		rc:   raw,
		srv:  srv,
		born: now,
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
		return
	}
	srv.register(c)
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
// DRAINING, NODE_FULL, RATE_LIMITED and UNAVAILABLE, as HTTP statuses.
func (srv *server) admit(ip string) *refusal {
	if srv.draining.Load() {
		srv.metrics.refused.WithLabelValues(codeDraining).Inc()
		return rejection(http.StatusServiceUnavailable, codeDraining, "this node is shutting down; reconnect", 0)
	}
	if srv.connCount()+int(srv.pending.Load())-1 >= srv.cfg.Limits.MaxConnections {
		srv.metrics.refused.WithLabelValues(codeNodeFull).Inc()
		return rejection(http.StatusServiceUnavailable, codeNodeFull, "this node is at its connection cap; reconnect", time.Second)
	}
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

func hostOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
