package bench

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// epollLoop reads its share of the connections with one level-triggered
// epoll instance and one goroutine: each readiness event is one read of up
// to readBufSize bytes into the loop's buffer (many frames per syscall under
// load), whose complete frames are handled at once; a partial frame is kept
// on the connection. An idle connection costs its Conn and nothing else.
//
// Only the loop closes the connections it watches: others call
// Conn.shutdown, and the loop closes on the EOF that follows, so an fd number
// is never reused while the loop may still read it.
type epollLoop struct {
	w    *worker
	epfd int
	wake [2]int // a pipe that interrupts EpollWait
	h    handler
	on   func(c *Conn, msg []byte) error // h.on, bound once
	buf  []byte
	// delay is slept after each batch of events when set (Config.ReadDelay):
	// frames pile up in the socket buffers meanwhile, so each read returns
	// more of them, at the price of up to delay added to measured latencies.
	delay time.Duration

	mu   sync.Mutex // guards byFD
	byFD map[int32]*Conn

	stop atomic.Bool
	done chan struct{}
}

const readBufSize = 256 << 10

func newEpollLoop(w *worker, rec *recorder) (*epollLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("bench: epoll_create1: %w", err)
	}
	l := &epollLoop{w: w, epfd: epfd, h: handler{w: w, rec: rec}, buf: make([]byte, readBufSize),
		byFD: make(map[int32]*Conn), done: make(chan struct{}), delay: w.cfg.ReadDelay.D()}
	l.on = l.h.on
	if err := unix.Pipe2(l.wake[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("bench: pipe2: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, l.wake[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.wake[0])}); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("bench: epoll_ctl: %w", err)
	}
	go l.run()
	return l, nil
}

func (l *epollLoop) closeFDs() {
	_ = unix.Close(l.epfd)
	_ = unix.Close(l.wake[0])
	_ = unix.Close(l.wake[1])
}

// add starts watching c. The fd comes from SyscallConn().Control (File()
// would duplicate it).
func (l *epollLoop) add(c *Conn) error {
	fd, err := connFD(c.nc)
	if err != nil {
		return err
	}
	c.fd = fd
	l.mu.Lock()
	l.byFD[int32(fd)] = c
	l.mu.Unlock()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		l.mu.Lock()
		delete(l.byFD, int32(fd))
		l.mu.Unlock()
		return fmt.Errorf("bench: epoll_ctl add: %w", err)
	}
	return nil
}

// close stops the loop and waits for it; the connections stay open.
func (l *epollLoop) close() {
	if l.stop.Swap(true) {
		return
	}
	_, _ = unix.Write(l.wake[1], []byte{1})
	<-l.done
	l.closeFDs()
}

// conns returns the connections being watched.
func (l *epollLoop) conns() []*Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Conn, 0, len(l.byFD))
	for _, c := range l.byFD {
		out = append(out, c)
	}
	return out
}

func (l *epollLoop) run() {
	defer close(l.done)
	events := make([]unix.EpollEvent, 512)
	for !l.stop.Load() {
		n, err := unix.EpollWait(l.epfd, events, 1000)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			l.w.fatal(fmt.Errorf("bench: epoll_wait: %w", err))
			return
		}
		for i := range n {
			fd := events[i].Fd
			if fd == int32(l.wake[0]) {
				continue
			}
			l.mu.Lock()
			c := l.byFD[fd]
			l.mu.Unlock()
			if c != nil {
				l.read(c)
			}
		}
		if l.delay > 0 && n > 0 {
			time.Sleep(l.delay)
		}
	}
}

// read reads once from c (level-triggered epoll reports it again if more is
// there) and handles what arrived.
func (l *epollLoop) read(c *Conn) {
	n, err := unix.Read(c.fd, l.buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n > 0 {
		rec := l.h.rec
		rec.mu.Lock()
		l.h.now = time.Now().UnixNano()
		ferr := c.feed(l.buf[:n], l.on)
		rec.mu.Unlock()
		if ferr == nil {
			return
		}
		err = ferr
	}
	if err == nil {
		err = errConnClosed // n == 0: EOF
	}
	l.remove(c)
	l.w.closed(c, err)
}

// remove stops watching c and closes it. Loop goroutine only.
func (l *epollLoop) remove(c *Conn) {
	l.mu.Lock()
	if l.byFD[int32(c.fd)] == c {
		delete(l.byFD, int32(c.fd))
	}
	l.mu.Unlock()
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	c.closeNow()
}
