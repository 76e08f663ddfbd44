package node

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// epollReader watches every plain-TCP connection with one level-triggered
// epoll instance in EPOLLONESHOT mode. A readable connection is handed to one
// of a bounded pool of workers, which reads what is there, handles every
// complete frame, keeps an incomplete one in a pooled buffer attached to the
// connection, and re-arms the fd. No goroutine belongs to an idle connection
// and idle connections hold no read buffer.
//
// Descriptor lifecycle: the connection never stores its fd number. Every
// epoll_ctl runs inside the connection's RawConn.Control, which holds a
// reference on the descriptor: while it runs the socket cannot be closed, so
// its number cannot have been reused by another connection. An event carries
// the connection's id (unique per process, never reused), not its fd, so an
// event of a closed connection cannot be delivered to a successor.
type epollReader struct {
	srv  *server
	epfd int
	work chan *conn
	wg   sync.WaitGroup

	mu        sync.RWMutex     // guards byID
	byID      map[uint64]*conn // connections in the epoll set, by conn id (the events' data)
	wake      [2]int           // a pipe that ends EpollWait on close
	closeOnce sync.Once

	// beforeRearm, set by tests only, runs in the worker between handling
	// a connection's input and re-arming it: the window a concurrent close
	// and descriptor reuse must not break.
	beforeRearm atomic.Pointer[func(*conn)]
}

const readInterest = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// wakeID is the event data of the wake pipe; connection ids start at 1.
const wakeID = 0

// epollEvent is the registration of id: its 64 bits fill the event's data
// (Fd and Pad together are the kernel's epoll_data union).
func epollEvent(events uint32, id uint64) unix.EpollEvent {
	return unix.EpollEvent{Events: events, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

// eventID is the id an event was registered with.
func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

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
	ev := epollEvent(unix.EPOLLIN, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		_ = unix.Close(p[0])
		_ = unix.Close(p[1])
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("node: epoll_ctl wake pipe: %w", err)
	}
	if workers <= 0 {
		// Handlers may wait on the engine (one Redis round trip or two), so
		// keep more workers than cores.
		workers = max(32, 8*runtime.GOMAXPROCS(0))
	}
	r := &epollReader{srv: srv, epfd: epfd, work: make(chan *conn, 4096), byID: make(map[uint64]*conn), wake: p}
	// Tracked like every goroutine of the node (node/CONCURRENCY.md); r.wg
	// lets close wait for them before the epoll descriptor is closed.
	r.wg.Add(1 + workers)
	srv.goroutines.Go(r.loop)
	for range workers {
		srv.goroutines.Go(r.worker)
	}
	return r, nil
}

// ctl runs epoll_ctl for c's descriptor inside RawConn.Control, so the
// descriptor is c's for the whole call. It returns net.ErrClosed (wrapped)
// once c's socket is closed.
func (r *epollReader) ctl(c *conn, op int, events uint32) error {
	var ctlErr error
	err := c.rc.Control(func(fd uintptr) {
		if op == unix.EPOLL_CTL_DEL {
			ctlErr = unix.EpollCtl(r.epfd, op, int(fd), nil)
			return
		}
		ev := epollEvent(events, c.id)
		ctlErr = unix.EpollCtl(r.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return fmt.Errorf("node: socket closed: %w", err)
	}
	return ctlErr
}

// add puts c in the epoll set. The fd is only ever used inside
// SyscallConn().Control, never File() (which would duplicate it).
func (r *epollReader) add(c *conn) error {
	if c.rc == nil {
		return errors.New("node: epoll needs a raw TCP connection")
	}
	if c.id == wakeID {
		return errors.New("node: connection id 0 is the wake pipe's")
	}
	// Known before the first event can arrive: an event for an unknown id
	// is dropped and, with EPOLLONESHOT, never comes again.
	r.mu.Lock()
	r.byID[c.id] = c
	r.mu.Unlock()
	if err := r.ctl(c, unix.EPOLL_CTL_ADD, readInterest); err != nil {
		r.forget(c)
		return fmt.Errorf("node: epoll_ctl add: %w", err)
	}
	if c.isClosed() {
		// Closed while being added: its remove may have run before the
		// ADD. Removing twice is harmless.
		r.remove(c)
	}
	return nil
}

// forget drops c from the id index; its events are ignored from now on.
func (r *epollReader) forget(c *conn) {
	r.mu.Lock()
	delete(r.byID, c.id)
	r.mu.Unlock()
}

// remove takes c out of the epoll set; call it before c's socket is closed.
// After its socket is closed there is nothing left to do: the kernel drops a
// closed descriptor from the set by itself.
func (r *epollReader) remove(c *conn) {
	r.forget(c)
	if c.rc != nil {
		_ = r.ctl(c, unix.EPOLL_CTL_DEL, 0)
	}
}

// rearm asks for the next readiness event of c.
func (r *epollReader) rearm(c *conn) {
	err := r.ctl(c, unix.EPOLL_CTL_MOD, readInterest)
	if err != nil && !c.isClosed() {
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
			id := eventID(&events[i])
			if id == wakeID {
				return
			}
			r.mu.RLock()
			c := r.byID[id]
			r.mu.RUnlock()
			if c == nil {
				continue // stale event of a removed connection
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
			if hook := r.beforeRearm.Load(); hook != nil {
				(*hook)(c)
			}
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
