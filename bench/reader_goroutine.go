package bench

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// connFD returns the socket's fd, taken with SyscallConn().Control so it is
// not duplicated.
func connFD(nc net.Conn) (int, error) {
	sc, ok := nc.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return -1, errors.New("bench: epoll needs a plain TCP connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, fmt.Errorf("bench: take fd: %w", err)
	}
	return fd, nil
}

// goroutineReadBuf is each goroutine reader's buffer: a goroutine blocked in
// Read must own one, so this is the per-connection price of the mode.
const goroutineReadBuf = 4 << 10

// readGoroutine reads c until it closes: one goroutine and one buffer per
// connection, the runtime's netpoller doing the waiting. Recorders are
// shared by shards of connections and locked once per read.
func (w *worker) readGoroutine(c *Conn, rec *recorder) {
	buf := make([]byte, goroutineReadBuf)
	h := handler{w: w, rec: rec}
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			rec.mu.Lock()
			h.now = time.Now().UnixNano()
			ferr := c.feed(buf[:n], h.on)
			rec.mu.Unlock()
			if ferr != nil {
				err = ferr
			}
		}
		if err != nil {
			c.closeNow()
			w.closed(c, err)
			return
		}
	}
}
