package node

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// conn is one upgraded WebSocket connection.
//
// Reading belongs to whoever the reader hands the connection to: one epoll
// worker at a time (EPOLLONESHOT) or the connection's own goroutine. Fields
// under "read side" are touched only there. Writing is a bounded queue with at
// most one writer at a time (flushing), so frames are never interleaved.
type conn struct {
	id   uint64 // unique in this process, never 0; also the data of its epoll events
	sid  string // Engine.IO session id
	nc   net.Conn
	rc   syscall.RawConn // nil for TLS connections; the fd is used only inside rc's methods
	srv  *server
	born time.Time
	// remoteAddr is the client's address for logs: the TCP peer, or the
	// client a trusted proxy forwarded for (see remoteForLogs).
	remoteAddr string

	// read side: guarded by readMu, which the reading worker holds. EPOLLONESHOT
	// already gives one reader at a time; the (uncontended) lock makes the
	// hand-off between workers a happens-before edge the Go memory model sees.
	readMu  sync.Mutex
	partial []byte    // pooled; holds an incomplete frame, nil otherwise
	frag    *fragment // a fragmented message being assembled (rare), nil otherwise
	discard int       // binary attachment frames still to discard
	sess    session

	// heartbeat, read by the sweeper
	pingSentAt   atomic.Int64 // unix nanos of the last ping sent (or of the open)
	awaitingPong atomic.Bool

	mu       sync.Mutex // guards the following
	out      [][]byte   // queued frames, oldest first
	spare    [][]byte   // the other queue slice, swapped in by the writer
	outBytes int
	flushing bool // a writer owns the connection's output
	closing  bool // close once the queue is written (graceful close)
	closed   bool
	closeWhy string
}

// fragment is a message arriving in several frames (RFC 6455 5.4).
type fragment struct {
	op      ws.OpCode
	data    []byte
	checked int // text: bytes of data known to be complete, valid UTF-8
}

// checkUTF8 validates a text message's bytes from f.checked on as they
// arrive, so invalid UTF-8 fails the connection at the fragment that holds
// it (RFC 6455 8.1). Until final, a rune cut by the fragment boundary is left
// for the next fragment.
func (f *fragment) checkUTF8(final bool) bool {
	b := f.data[f.checked:]
	end := len(b)
	if !final {
		for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
			if utf8.RuneStart(b[i]) {
				if !utf8.FullRune(b[i:]) {
					end = i
				}
				break
			}
		}
	}
	if !utf8.Valid(b[:end]) {
		return false
	}
	f.checked += end
	return true
}

// remote is the client's address, for logs.
func (c *conn) remote() string { return c.remoteAddr }

// send queues a frame. The frame's bytes may be shared with other
// connections and are never modified. It reports false when the connection is
// closed or was just closed as a slow consumer.
func (c *conn) send(frame []byte) bool {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return false
	}
	if c.outBytes+len(frame) > c.srv.cfg.OutboundQueueBytes {
		// Refuse further frames now; close off the caller's path, which may
		// hold the hub's lock (close takes it).
		c.closing = true
		queued := c.outBytes
		c.mu.Unlock()
		c.srv.metrics.slowConsumers.Inc()
		c.srv.stats.slowConsumers.Add(1)
		c.srv.live.record(liveEvent{Kind: liveSlowConsumer, User: c.sess.userID(), Conn: c.sid, Remote: c.remote(),
			Detail: strconv.Itoa(queued) + " bytes queued"})
		c.srv.hotLog.Warn().Str("conn", c.sid).Str("user", c.sess.userID()).Int("queued_bytes", queued).
			Msg("slow consumer disconnected")
		c.srv.goroutines.Go(func() { c.close(reasonSlowConsumer) })
		return false
	}
	c.queueLocked(frame)
	start := !c.flushing
	c.flushing = true
	c.mu.Unlock()
	if start {
		if c.srv.delayed != nil {
			c.srv.delayed.add(c)
		} else {
			c.srv.writers.schedule(c)
		}
	}
	return true
}

// queueLocked appends frame to the outbound queue and counts its bytes (the
// connection's and the node's). c.mu must be held.
func (c *conn) queueLocked(frame []byte) {
	c.out = append(c.out, frame)
	c.outBytes += len(frame)
	c.srv.queuedBytes.Add(int64(len(frame)))
}

// closeAfter queues a last frame (for example a close frame) and closes the
// connection once everything queued before it is written.
func (c *conn) closeAfter(frame []byte, reason string) {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeWhy = reason
	if frame != nil {
		c.queueLocked(frame)
	}
	start := !c.flushing
	c.flushing = true
	c.mu.Unlock()
	if start {
		c.srv.writers.schedule(c)
	}
	// A client that never drains must not keep the connection forever.
	c.srv.goroutines.AfterFunc(c.srv.cfg.WriteTimeout, func() { c.close(reason) })
}

// flush writes what is queued. It is called by a writer with c.flushing set;
// it returns with c.flushing cleared, or hands the connection to a blocking
// writer goroutine when the socket cannot take more right now.
func (c *conn) flush() {
	for {
		c.mu.Lock()
		if c.closed {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		if len(c.out) == 0 {
			c.flushing = false
			closing := c.closing
			why := c.closeWhy
			c.mu.Unlock()
			if closing {
				c.closeGraceful(why)
			}
			return
		}
		batch := c.out
		c.out = c.spare[:0]
		c.spare = nil
		c.mu.Unlock()

		written, rest, err := c.writeBatch(batch)
		if err != nil {
			c.unqueue(written)
			c.close(reasonWriteError)
			return
		}
		if len(rest) > 0 {
			// The socket buffer is full: finish in a goroutine that may block
			// (bounded by WriteTimeout), so no pool writer is pinned.
			c.unqueue(written)
			c.srv.goroutines.Go(func() { c.flushBlocking(rest, batch) })
			return
		}
		c.recycle(batch, written)
	}
}

// recycle returns a written batch slice for reuse and accounts its bytes.
func (c *conn) recycle(batch [][]byte, written int) {
	clear(batch)
	c.mu.Lock()
	c.unqueueLocked(written)
	if c.spare == nil && !c.closed {
		c.spare = batch[:0]
	}
	c.mu.Unlock()
}

// unqueue accounts n queued bytes as written (or lost to a write error).
func (c *conn) unqueue(n int) {
	c.mu.Lock()
	c.unqueueLocked(n)
	c.mu.Unlock()
}

// unqueueLocked subtracts n written bytes from the connection's and the
// node's queued bytes. Once the connection is closed, shutdown has already
// subtracted everything still counted (including bytes a writer had in
// flight), so nothing is subtracted twice. c.mu must be held.
func (c *conn) unqueueLocked(n int) {
	if c.closed || n == 0 {
		return
	}
	c.outBytes -= n
	c.srv.queuedBytes.Add(-int64(n))
}

// writeBatch writes frames without blocking when the connection has a raw
// fd (writev); rest holds what the socket did not take (first element
// possibly a suffix of a frame). TLS connections write blocking (the caller
// is then a goroutine of their own).
func (c *conn) writeBatch(batch [][]byte) (written int, rest [][]byte, err error) {
	if c.rc == nil {
		return 0, batch, nil
	}
	rest = batch
	for len(rest) > 0 {
		iov := rest
		if len(iov) > 1024 { // IOV_MAX
			iov = iov[:1024]
		}
		var n int
		var werr error
		cerr := c.rc.Write(func(fd uintptr) bool {
			n, werr = unix.Writev(int(fd), iov)
			return true
		})
		if cerr != nil {
			return written, rest, cerr
		}
		if n > 0 {
			written += n
			rest = advance(rest, n)
		}
		if werr == unix.EINTR {
			continue
		}
		if werr == unix.EAGAIN {
			return written, rest, nil
		}
		if werr != nil {
			return written, rest, werr
		}
	}
	return written, nil, nil
}

// advance drops n written bytes from the front of bufs.
func advance(bufs [][]byte, n int) [][]byte {
	for n > 0 && len(bufs) > 0 {
		if n >= len(bufs[0]) {
			n -= len(bufs[0])
			bufs = bufs[1:]
			continue
		}
		bufs[0] = bufs[0][n:]
		n = 0
	}
	return bufs
}

// flushBlocking writes rest with a deadline, then resumes normal flushing.
func (c *conn) flushBlocking(rest [][]byte, batch [][]byte) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	bufs := net.Buffers(rest)
	n, err := bufs.WriteTo(c.nc)
	_ = c.nc.SetWriteDeadline(time.Time{})
	if err != nil {
		c.unqueue(int(n))
		c.close(reasonWriteError)
		return
	}
	c.recycle(batch, int(n))
	c.flush()
}

// close closes the connection once, for reason; safe from any goroutine.
func (c *conn) close(reason string) { c.shutdown(reason, false) }

// closeGraceful closes after a close frame was written: the write side is
// shut first so the frame reaches the client ahead of a FIN, and the socket
// is released a moment later. Closing at once with unread input would send
// an RST that can destroy the close frame in flight.
func (c *conn) closeGraceful(reason string) { c.shutdown(reason, true) }

// lingerAfterClose is how long a gracefully closed socket stays half-open.
const lingerAfterClose = time.Second

func (c *conn) shutdown(reason string, graceful bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	// Everything still counted leaves the node's total here, including
	// bytes a writer has in flight: its unqueue finds c.closed and
	// subtracts nothing.
	c.srv.queuedBytes.Add(-int64(c.outBytes))
	c.out, c.spare, c.outBytes = nil, nil, 0
	c.mu.Unlock()
	// Remove from epoll before closing: the fd number is reused at once.
	c.srv.reader.remove(c)
	if hc, ok := c.nc.(interface{ CloseWrite() error }); graceful && ok {
		_ = hc.CloseWrite()
		c.srv.goroutines.AfterFunc(lingerAfterClose, func() { _ = c.nc.Close() })
	} else {
		_ = c.nc.Close()
	}
	c.srv.onClosed(c, reason)
}

// isClosed reports whether close has run.
func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Disconnect reasons, logged and used as metric labels.
const (
	reasonClientClose    = "client_close"
	reasonClientGone     = "client_gone"
	reasonReadError      = "read_error"
	reasonWriteError     = "write_error"
	reasonProtocol       = "protocol_error"
	reasonFrameTooLarge  = "frame_too_large"
	reasonPingTimeout    = "ping_timeout"
	reasonSlowConsumer   = "slow_consumer"
	reasonAuthExpired    = "auth_expired"
	reasonConnectTimeout = "connect_timeout"
	reasonUnavailable    = "unavailable"
	reasonDraining       = "draining"
	reasonNamespace      = "invalid_namespace"
	reasonShutdown       = "shutdown"
)

// onData parses and handles every complete frame at the front of b and
// returns how many bytes it consumed. It is called by the read side only.
// b is the reader's buffer and is reused after return: nothing may keep it.
func (c *conn) onData(b []byte) (consumed int, reason string) {
	maxFrame := c.srv.cfg.Limits.MaxFrame
	for consumed < len(b) {
		h, hlen, ok, err := parseFrameHeader(b[consumed:], maxFrame)
		if err != nil {
			if err == errFrameTooLarge {
				c.closeAfter(closeFrame(ws.StatusMessageTooBig, "frame too large"), reasonFrameTooLarge)
				return len(b), reasonFrameTooLarge
			}
			c.closeAfter(closeFrame(ws.StatusProtocolError, "protocol error"), reasonProtocol)
			return len(b), reasonProtocol
		}
		if !ok || int64(len(b)-consumed-hlen) < h.Length {
			return consumed, "" // incomplete: keep for the next read
		}
		payload := b[consumed+hlen : consumed+hlen+int(h.Length)]
		consumed += hlen + int(h.Length)
		ws.Cipher(payload, h.Mask, 0)
		if why := c.onFrame(h, payload); why != "" {
			return len(b), why
		}
	}
	return consumed, ""
}

// onFrame handles one unmasked frame (RFC 6455 5.4-5.6). Control frames
// may arrive between the fragments of a message.
func (c *conn) onFrame(h ws.Header, payload []byte) (reason string) {
	switch h.OpCode {
	case ws.OpPing:
		c.send(appendFrame(nil, ws.OpPong, payload))
		return ""
	case ws.OpPong:
		return ""
	case ws.OpClose:
		return c.onClose(payload)
	case ws.OpContinuation:
		if c.frag == nil {
			c.closeAfter(closeFrame(ws.StatusProtocolError, "unexpected continuation"), reasonProtocol)
			return reasonProtocol
		}
		if len(c.frag.data)+len(payload) > c.srv.cfg.Limits.MaxFrame {
			c.frag = nil
			c.closeAfter(closeFrame(ws.StatusMessageTooBig, "message too large"), reasonFrameTooLarge)
			return reasonFrameTooLarge
		}
		c.frag.data = append(c.frag.data, payload...)
		if c.frag.op == ws.OpText && !c.frag.checkUTF8(h.Fin) {
			c.frag = nil
			return c.invalidUTF8()
		}
		if !h.Fin {
			return ""
		}
		f := c.frag
		c.frag = nil
		return c.onMessage(f.op, f.data)
	case ws.OpText, ws.OpBinary:
		if c.frag != nil {
			c.closeAfter(closeFrame(ws.StatusProtocolError, "expected continuation"), reasonProtocol)
			return reasonProtocol
		}
		if !h.Fin {
			c.frag = &fragment{op: h.OpCode, data: append(make([]byte, 0, len(payload)*2), payload...)}
			if h.OpCode == ws.OpText && !c.frag.checkUTF8(false) {
				c.frag = nil
				return c.invalidUTF8()
			}
			return ""
		}
		if h.OpCode == ws.OpText && !utf8.Valid(payload) {
			return c.invalidUTF8()
		}
		return c.onMessage(h.OpCode, payload)
	}
	c.closeAfter(closeFrame(ws.StatusProtocolError, "bad opcode"), reasonProtocol)
	return reasonProtocol
}

// onClose answers a client's close frame (RFC 6455 5.5.1, 7.4): an empty
// one with 1000, a well-formed one by echoing its code, and a malformed one
// (a one-byte body, a code no endpoint may send, a reason that is not UTF-8)
// with 1002.
func (c *conn) onClose(payload []byte) (reason string) {
	code, ok := parseClosePayload(payload)
	if !ok {
		return c.protocolError("invalid close frame")
	}
	c.closeAfter(closeFrame(code, ""), reasonClientClose)
	return reasonClientClose
}

// invalidUTF8 fails the connection for a text message that is not UTF-8
// (RFC 6455 8.1 and 7.4.1: status 1007).
func (c *conn) invalidUTF8() (reason string) {
	c.srv.hotLog.Warn().Str("conn", c.sid).Str("user", c.sess.userID()).Msg("text message is not valid UTF-8")
	c.closeAfter(closeFrame(ws.StatusInvalidFramePayloadData, "invalid UTF-8"), reasonProtocol)
	return reasonProtocol
}

// onMessage handles one complete WebSocket message.
func (c *conn) onMessage(op ws.OpCode, msg []byte) (reason string) {
	if op == ws.OpBinary {
		// Attachments of a refused binary packet are discarded; any other
		// binary message is a protocol error (Engine.IO v4 over WebSocket
		// sends binary only as attachments).
		if c.discard > 0 {
			c.discard--
			return ""
		}
		// RFC 6455 7.4.1: 1003 is for a type of data the endpoint cannot accept.
		c.srv.hotLog.Warn().Str("conn", c.sid).Str("user", c.sess.userID()).Msg("binary message outside attachments")
		c.closeAfter(closeFrame(ws.StatusUnsupportedData, "unexpected binary message"), reasonProtocol)
		return reasonProtocol
	}
	return c.sess.onText(c, msg)
}

// protocolError closes the connection for a malformed packet.
func (c *conn) protocolError(what string) string {
	c.srv.hotLog.Warn().Str("conn", c.sid).Str("user", c.sess.userID()).Str("error", what).Msg("protocol error")
	c.closeAfter(closeFrame(ws.StatusProtocolError, what), reasonProtocol)
	return reasonProtocol
}
