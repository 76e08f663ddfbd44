package node

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// epollReader watches every plain-TCP connection with one level-triggered
// epoll instance in EPOLLONESHOT mode. A readable connection is handed to one
// of a bounded pool of workers, which reads what is there, handles every
// complete frame, keeps an incomplete one in a pooled buffer attached to the
// connection, and re-arms the fd. No goroutine belongs to an idle connection
// and idle connections hold no read buffer.
type epollReader struct {
	srv  *server
	epfd int
	work chan *conn
	wg   sync.WaitGroup

	mu        sync.RWMutex // guards byFD
	byFD      map[int32]*conn
	wake      [2]int // a pipe that ends EpollWait on close
	closeOnce sync.Once
}

const readInterest = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func newEpollReader(srv *server, workers int) (*epollReader, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("node: epoll_create1: %w", err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("node: pipe2: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p[0])}); err != nil {
		return nil, fmt.Errorf("node: epoll_ctl wake pipe: %w", err)
	}
	if workers <= 0 {
		// Handlers may wait on the engine (one Redis round trip or two), so
		// keep more workers than cores.
		workers = max(32, 8*runtime.GOMAXPROCS(0))
	}
	r := &epollReader{srv: srv, epfd: epfd, work: make(chan *conn, 4096), byFD: make(map[int32]*conn), wake: p}
	r.wg.Add(1 + workers)
	go r.loop()
	for range workers {
		go r.worker()
	}
	return r, nil
}

// add registers c's fd. The fd is taken with SyscallConn().Control, never
// File() (which would duplicate it).
func (r *epollReader) add(c *conn) error {
	if c.rc == nil {
		return errors.New("node: epoll needs a raw TCP connection")
	}
	var fd int
	if err := c.rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return fmt.Errorf("node: take fd: %w", err)
	}
	c.fd = fd
	r.mu.Lock()
	r.byFD[int32(fd)] = c
	r.mu.Unlock()
	// Pad carries the connection's generation so an event for a closed
	// connection cannot land on a successor that reused its fd number.
	ev := unix.EpollEvent{Events: readInterest, Fd: int32(fd), Pad: int32(uint32(c.id))}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		r.mu.Lock()
		delete(r.byFD, int32(fd))
		r.mu.Unlock()
		return fmt.Errorf("node: epoll_ctl add: %w", err)
	}
	return nil
}

// remove unregisters c before its socket is closed.
func (r *epollReader) remove(c *conn) {
	if c.fd < 0 {
		return
	}
	r.mu.Lock()
	if r.byFD[int32(c.fd)] == c {
		delete(r.byFD, int32(c.fd))
	}
	r.mu.Unlock()
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
}

// rearm asks for the next readiness event of c.
func (r *epollReader) rearm(c *conn) {
	ev := unix.EpollEvent{Events: readInterest, Fd: int32(c.fd), Pad: int32(uint32(c.id))}
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil && !c.isClosed() {
		c.close(reasonReadError)
	}
}

func (r *epollReader) loop() {
	defer r.wg.Done()
	defer close(r.work)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(r.epfd, events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			r.srv.log.Error().Err(err).Msg("epoll_wait failed; reader stopped")
			return
		}
		for i := range n {
			ev := &events[i]
			if ev.Fd == int32(r.wake[0]) {
				return
			}
			r.mu.RLock()
			c := r.byFD[ev.Fd]
			r.mu.RUnlock()
			if c == nil || int32(uint32(c.id)) != ev.Pad {
				continue // stale event of a closed connection
			}
			r.work <- c
		}
	}
}

func (r *epollReader) worker() {
	defer r.wg.Done()
	// Room for a partial frame plus a full one: a frame is at most
	// MaxFrame+14 bytes, so a complete frame always fits after leftovers.
	buf := make([]byte, 2*(r.srv.cfg.Limits.MaxFrame+14))
	for c := range r.work {
		c.readMu.Lock()
		open := r.readReady(c, buf)
		c.readMu.Unlock()
		if open {
			r.rearm(c)
		}
	}
}

// maxReadsPerWakeup bounds the reads one wake-up does, so a busy connection
// cannot starve others; level-triggered epoll reports it again.
const maxReadsPerWakeup = 4

// readReady reads and handles what c has; it reports whether c stays open.
func (r *epollReader) readReady(c *conn, buf []byte) bool {
	n := copy(buf, c.partial)
	r.srv.releasePartial(c)
	for range maxReadsPerWakeup {
		want := len(buf) - n
		var nr int
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			nr, rerr = unix.Read(int(fd), buf[n:])
			return true // never park: epoll says when to come back
		})
		if err != nil { // closed under us
			return false
		}
		if rerr == unix.EINTR {
			continue
		}
		if rerr == unix.EAGAIN {
			break
		}
		if rerr != nil {
			c.close(reasonReadError)
			return false
		}
		if nr == 0 {
			c.close(reasonClientGone)
			return false
		}
		n += nr
		consumed, reason := c.onData(buf[:n])
		if reason != "" {
			return false // closing: no more reads
		}
		n = copy(buf, buf[consumed:n])
		if nr < want {
			break // the socket had less than we asked for: drained
		}
	}
	if n > 0 {
		r.srv.keepPartial(c, buf[:n])
	}
	return !c.isClosed()
}

func (r *epollReader) close() {
	r.closeOnce.Do(func() {
		_, _ = unix.Write(r.wake[1], []byte{1})
		r.wg.Wait()
		_ = unix.Close(r.epfd)
		_ = unix.Close(r.wake[0])
		_ = unix.Close(r.wake[1])
	})
}
