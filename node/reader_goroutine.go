package node

import (
	"errors"
	"io"
	"net"
)

// goroutineReader gives each connection a reading goroutine with its own
// buffer: the classic model, used for TLS (where epoll cannot see decrypted
// bytes) and selectable with --io goroutine for comparison.
type goroutineReader struct{ srv *server }

func (g goroutineReader) add(c *conn) error {
	g.srv.goroutines.Go(func() { g.read(c) })
	return nil
}

func (goroutineReader) remove(*conn) {}
func (goroutineReader) close()       {}

func (g goroutineReader) read(c *conn) {
	buf := make([]byte, 4096)
	n := 0
	for {
		if n == len(buf) {
			// A frame larger than the buffer: grow up to one maximal frame
			// plus what precedes it.
			if len(buf) >= 2*(g.srv.cfg.Limits.MaxFrame+14) {
				c.close(reasonProtocol)
				return
			}
			buf = append(buf, make([]byte, len(buf))...)
		}
		nr, err := c.nc.Read(buf[n:])
		n += nr
		if nr > 0 {
			consumed, reason := c.onData(buf[:n])
			if reason != "" {
				return
			}
			n = copy(buf, buf[consumed:n])
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				c.close(reasonClientGone)
			case errors.Is(err, net.ErrClosed):
				// closed by us
			default:
				c.close(reasonReadError)
			}
			return
		}
	}
}
