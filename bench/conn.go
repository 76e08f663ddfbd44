package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/anchat/realtime/socketio"
)

// Connection states.
const (
	stateOpen    int32 = iota // waiting for the Engine.IO open packet
	stateConnect              // CONNECT sent, waiting for its answer
	stateJoin                 // join_chat sent, waiting for its ack
	stateReady                // joined: counted, may send
	stateClosed
)

// Conn is one client connection: a user joined to one chat. It holds no
// read buffer or goroutine of its own with the epoll reader; pending keeps
// only a partial frame between reads.
type Conn struct {
	idx    int // global connection index
	group  int // chat (or RTM profile) index
	member int // index within the group
	nc     net.Conn
	fd     int
	state  atomic.Int32

	wmu sync.Mutex // guards writes to nc: one writer at a time (pongs, sends, joins)

	// Read side: owned by whichever goroutine reads the connection (the
	// connector during the handshake, then its reader).
	pending []byte      // an incomplete frame carried to the next read
	frag    []byte      // a fragmented text message being assembled
	seen    []seqSet    // by sender member: what this receiver got
	err     string      // why the handshake failed (connect error or ack code)
	dropped atomic.Bool // reconnect: closed on purpose, to come back
	closing atomic.Bool // a close frame was sent: the server's is not echoed

	// Send side: owned by the pacer.
	sendSeq int64
	typing  bool

	startedAt int64 // unix ns the current connection attempt began
}

// errConnClosed ends reading a connection the server closed.
var errConnClosed = errors.New("bench: connection closed")

// handshakeError carries the server's refusal code.
type handshakeError struct{ code string }

func (e *handshakeError) Error() string { return "refused: " + e.code }

// writeFrame writes one complete, already masked frame.
func (c *Conn) writeFrame(frame []byte) error {
	c.wmu.Lock()
	_, err := c.nc.Write(frame)
	c.wmu.Unlock()
	return err
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeText masks and writes one text frame.
func (c *Conn) writeText(payload []byte) error {
	bp := framePool.Get().(*[]byte)
	f := appendClientFrame((*bp)[:0], ws.OpText, payload, ws.NewMask())
	err := c.writeFrame(f)
	if cap(f) <= 64<<10 {
		*bp = f[:0]
		framePool.Put(bp)
	}
	return err
}

// writeControl answers a WebSocket ping or close.
func (c *Conn) writeControl(op ws.OpCode, payload []byte) error {
	var arr [2 + 4 + 125]byte
	return c.writeFrame(appendClientFrame(arr[:0], op, payload, ws.NewMask()))
}

// shutdown ends both directions without releasing the fd, so the reader that
// owns the connection sees EOF and closes it itself (closing it here could
// let the fd number be reused under the reader's feet).
func (c *Conn) shutdown() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.CloseRead()
		_ = tc.CloseWrite()
		return
	}
	_ = c.nc.Close()
}

// normalClose is the body of the close frame the generator ends with: 1000.
var normalClose = ws.NewCloseFrameBody(ws.StatusNormalClosure, "")

// startClose begins a clean close: a WebSocket close frame. The server
// answers with its own and closes the TCP connection first (RFC 6455
// 7.1.1), so it records a client close, not a broken connection, and the
// TIME_WAIT stays on its side rather than on the generator's ports.
func (c *Conn) startClose(deadline time.Time) {
	if c.closing.Swap(true) {
		return
	}
	_ = c.nc.SetWriteDeadline(deadline)
	_ = c.writeControl(ws.OpClose, normalClose)
}

// finishClose waits until deadline for the server to close the connection
// (reading and discarding what is still in flight), then closes it: with a
// FIN when the server has closed, with a reset otherwise. Only for a
// connection no reader owns any more.
func (c *Conn) finishClose(deadline time.Time, buf []byte) {
	_ = c.nc.SetReadDeadline(deadline)
	for {
		if _, err := c.nc.Read(buf); err != nil {
			if errors.Is(err, io.EOF) {
				_ = c.nc.Close()
				return
			}
			c.closeNow()
			return
		}
	}
}

// closeNow releases the socket with a reset (SO_LINGER 0): no TIME_WAIT
// left on the generator's ports between runs.
func (c *Conn) closeNow() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.nc.Close()
}

// feed parses every complete frame of data (appended to what was pending)
// and hands text messages to h. An incomplete tail is kept for the next read.
func (c *Conn) feed(data []byte, h func(c *Conn, msg []byte) error) error {
	fromPending := len(c.pending) > 0
	if fromPending {
		c.pending = append(c.pending, data...)
		data = c.pending
	}
	off := 0
	var err error
	for off < len(data) {
		var hdr ws.Header
		var n int
		hdr, n, err = parseFrameHeader(data[off:])
		if err != nil || n == 0 { // n == 0: incomplete
			break
		}
		end := off + n + int(hdr.Length)
		if end > len(data) {
			break
		}
		payload := data[off+n : end]
		off = end
		if hdr.Masked { // servers must not mask (RFC 6455 section 5.1); tolerate it
			ws.Cipher(payload, hdr.Mask, 0)
		}
		if err = c.frame(hdr, payload, h); err != nil {
			break
		}
	}
	rest := data[off:]
	switch {
	case len(rest) == 0:
		if cap(c.pending) > 16<<10 {
			c.pending = nil // an idle connection keeps no large buffer
		} else {
			c.pending = c.pending[:0]
		}
	case fromPending:
		c.pending = c.pending[:copy(c.pending, rest)]
	default:
		c.pending = append(c.pending[:0], rest...)
	}
	return err
}

// frame handles one frame (RFC 6455 section 5.4 fragments, 5.5 control).
func (c *Conn) frame(hdr ws.Header, payload []byte, h func(c *Conn, msg []byte) error) error {
	switch hdr.OpCode {
	case ws.OpText, ws.OpBinary:
		if !hdr.Fin {
			c.frag = append(c.frag[:0], payload...)
			if hdr.OpCode == ws.OpBinary {
				c.frag = append(c.frag[:0], 0xff) // remembered as binary, dropped when complete
			}
			return nil
		}
		if hdr.OpCode == ws.OpBinary { // Socket.IO attachments: none expected, ignored
			return nil
		}
		return h(c, payload)
	case ws.OpContinuation:
		c.frag = append(c.frag, payload...)
		if !hdr.Fin {
			return nil
		}
		msg := c.frag
		c.frag = nil
		if len(msg) > 0 && msg[0] == 0xff {
			return nil
		}
		return h(c, msg)
	case ws.OpPing:
		return c.writeControl(ws.OpPong, payload)
	case ws.OpPong:
		return nil
	case ws.OpClose:
		if !c.closing.Load() { // the server's close: echo it (RFC 6455 5.5.1)
			_ = c.writeControl(ws.OpClose, payload)
		}
		return errConnClosed
	}
	return nil
}

// eventName splits "42<nsp>,<ack id>[\"name\"..." (Engine.IO message, Socket.IO
// EVENT) into the event name and the whole frame; ok is false for anything
// else.
func eventName(msg []byte) (name []byte, ok bool) {
	if len(msg) < 4 || msg[0] != socketio.EngineMessage || msg[1] != '2' {
		return nil, false
	}
	i := 2
	if msg[i] == '/' {
		j := bytes.IndexByte(msg[i:], ',')
		if j < 0 {
			return nil, false
		}
		i += j + 1
	}
	for i < len(msg) && msg[i] >= '0' && msg[i] <= '9' {
		i++
	}
	if len(msg)-i < 3 || msg[i] != '[' || msg[i+1] != '"' {
		return nil, false
	}
	i += 2
	j := bytes.IndexByte(msg[i:], '"')
	if j < 0 {
		return nil, false
	}
	return msg[i : i+j], true
}

// dialer opens connections for one worker: one ws.Dialer per source address,
// each binding its address through NetDial.
type dialer struct {
	cfg     *Config
	dialers []ws.Dialer
}

func newDialer(cfg *Config) *dialer {
	d := &dialer{cfg: cfg}
	ips := cfg.LocalIPs
	if len(ips) == 0 {
		ips = []string{""}
	}
	for _, ip := range ips {
		nd := &net.Dialer{Timeout: cfg.ConnectTimeout.D()}
		if ip != "" {
			nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
		}
		d.dialers = append(d.dialers, ws.Dialer{
			Timeout:         cfg.ConnectTimeout.D(),
			ReadBufferSize:  4096,
			WriteBufferSize: 1024,
			NetDial:         nd.DialContext,
		})
	}
	return d
}

// dial connects connection idx's WebSocket: target idx % len(Targets),
// source address (idx / len(Targets)) % len(LocalIPs). Bytes the server sent
// right after the upgrade are returned too.
func (d *dialer) dial(ctx context.Context, idx int) (net.Conn, []byte, error) {
	t := d.cfg.Targets[idx%len(d.cfg.Targets)]
	dl := d.dialers[(idx/len(d.cfg.Targets))%len(d.dialers)]
	u := "ws://" + t + d.cfg.Path + "?EIO=4&transport=websocket"
	nc, br, _, err := dl.Dial(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	var early []byte
	if br != nil {
		b, _ := br.Peek(br.Buffered())
		early = append([]byte(nil), b...)
		ws.PutReader(br)
	}
	return nc, early, nil
}

// classify names an error for the error table: an HTTP status, a refusal
// code, or the kind of network failure.
func classify(err error) string {
	var se ws.StatusError
	var he *handshakeError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &he):
		return he.code
	case errors.As(err, &se):
		return "http_" + strconv.Itoa(int(se))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no_source_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too_many_files"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, errConnClosed):
		return "closed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

// handshake drives a freshly upgraded connection to stateReady with blocking
// reads: Engine.IO open, Socket.IO CONNECT with the token, join_chat with an
// ack (no join in the rtm scenario: toasts need none). buf is the caller's
// read buffer; on is the event handler for anything that arrives after the
// join in the same read.
func (c *Conn) handshake(deadline time.Time, token string, nsp, chatID string, join bool, buf []byte, on func(c *Conn, msg []byte) error) error {
	if err := c.nc.SetReadDeadline(deadline); err != nil {
		return err
	}
	defer c.nc.SetReadDeadline(time.Time{})
	auth := make([]byte, 0, len(token)+16)
	auth = append(auth, `{"token":"`...)
	auth = append(auth, token...)
	auth = append(auth, `"}`...)
	var scratch [256]byte
	h := func(c *Conn, msg []byte) error {
		st := c.state.Load()
		if st == stateReady {
			return on(c, msg)
		}
		if len(msg) == 0 {
			return nil
		}
		switch msg[0] {
		case socketio.EnginePing:
			return c.writeText(append(scratch[:0], '3'))
		case socketio.EngineOpen:
			if st != stateOpen {
				return nil
			}
			if _, err := socketio.ParseOpen(msg[1:]); err != nil {
				return err
			}
			c.state.Store(stateConnect)
			return c.writeText(socketio.AppendClientConnect(scratch[:0], nsp, auth))
		case socketio.EngineClose:
			return errConnClosed
		case socketio.EngineMessage:
		default:
			return nil
		}
		p, err := socketio.ParsePacket(msg[1:])
		if err != nil {
			return err
		}
		switch {
		case p.Type == socketio.ConnectError:
			code, ok := jsonStringAt(p.Data, fieldCode)
			if !ok {
				code, _ = jsonStringAt(p.Data, []byte(`"message":"`))
			}
			return &handshakeError{code: "connect_error:" + string(code)}
		case p.Type == socketio.Disconnect:
			return &handshakeError{code: "disconnected"}
		case p.Type == socketio.Connect && st == stateConnect:
			if !join {
				c.state.Store(stateReady)
				return nil
			}
			c.state.Store(stateJoin)
			data := append(append(append(scratch[:0:0], `{"chatId":"`...), chatID...), `"}`...)
			return c.writeText(socketio.AppendEvent(scratch[:0], nsp, 0, "join_chat", data))
		case p.Type == socketio.Ack && st == stateJoin && p.ID == 0:
			if !bytes.Contains(p.Data, []byte(`"ok":true`)) {
				code, _ := jsonStringAt(p.Data, fieldCode)
				if len(code) == 0 {
					code, _ = jsonStringAt(p.Data, []byte(`"error":"`))
				}
				return &handshakeError{code: "join:" + string(code)}
			}
			c.state.Store(stateReady)
			return nil
		}
		return nil
	}
	if len(c.pending) > 0 {
		early := c.pending
		c.pending = nil
		if err := c.feed(early, h); err != nil {
			return err
		}
	}
	for c.state.Load() != stateReady {
		n, err := c.nc.Read(buf)
		if n > 0 {
			if ferr := c.feed(buf[:n], h); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			if c.state.Load() == stateReady {
				break
			}
			return fmt.Errorf("handshake: %w", err)
		}
	}
	return nil
}
