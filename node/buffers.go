package node

import (
	"sync"
	"time"
)

// Partial-frame buffers come from size-classed pools and are attached to a
// connection only while it has an incomplete frame, so an idle connection
// holds no read buffer.
var partialClasses = [...]int{256, 2048, 16384, 65536 + 14, 2 * (65536 + 14)}

var partialPools [len(partialClasses)]sync.Pool

func getPartial(n int) []byte {
	for i, size := range partialClasses {
		if n <= size {
			if b, ok := partialPools[i].Get().(*[]byte); ok {
				return (*b)[:n]
			}
			return make([]byte, n, size)
		}
	}
	return make([]byte, n) // larger than any class (custom --max-frame)
}

func putPartial(b []byte) {
	for i, size := range partialClasses {
		if cap(b) == size {
			b = b[:0]
			partialPools[i].Put(&b)
			return
		}
	}
}

// keepPartial stores the unconsumed tail of a read on the connection.
func (srv *server) keepPartial(c *conn, tail []byte) {
	p := getPartial(len(tail))
	copy(p, tail)
	c.partial = p
}

// releasePartial returns the connection's partial buffer to its pool.
func (srv *server) releasePartial(c *conn) {
	if c.partial != nil {
		putPartial(c.partial)
		c.partial = nil
	}
}

// writerPool is a fixed set of goroutines that flush connections' outbound
// queues without blocking (a connection whose socket is full is finished by a
// goroutine of its own, bounded by WriteTimeout).
type writerPool struct {
	work chan *conn
	done chan struct{}
	wg   sync.WaitGroup // the pool's own goroutines, for close
	g    *goroutines    // the node's tracker, for overflow flushes
}

func newWriterPool(n int, g *goroutines) *writerPool {
	if n <= 0 {
		n = 8
	}
	p := &writerPool{work: make(chan *conn, 1<<16), done: make(chan struct{}), g: g}
	p.wg.Add(n)
	for range n {
		g.Go(func() {
			defer p.wg.Done()
			for {
				select {
				case c := <-p.work:
					c.flush()
				case <-p.done:
					return
				}
			}
		})
	}
	return p
}

// schedule hands c (whose flushing flag the caller set) to a writer. It never
// blocks the caller: when the queue is full a goroutine takes the job.
func (p *writerPool) schedule(c *conn) {
	select {
	case p.work <- c:
	default:
		p.g.Go(c.flush)
	}
}

// close stops the writers; frames scheduled afterwards are not written.
func (p *writerPool) close() {
	close(p.done)
	p.wg.Wait()
}

// delayedFlusher hands connections to the writers WriteDelay after their
// first frame was queued, so that frames arriving meanwhile are written in
// the same system call. One goroutine; it sleeps while nothing is pending.
type delayedFlusher struct {
	delay   time.Duration
	writers *writerPool
	wake    chan struct{} // cap 1
	done    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex // guards pending
	pending []*conn
}

func newDelayedFlusher(delay time.Duration, writers *writerPool, g *goroutines) *delayedFlusher {
	d := &delayedFlusher{delay: delay, writers: writers, wake: make(chan struct{}, 1), done: make(chan struct{})}
	d.wg.Add(1)
	g.Go(d.run)
	return d
}

// add queues c, whose flushing flag the caller set.
func (d *delayedFlusher) add(c *conn) {
	d.mu.Lock()
	first := len(d.pending) == 0
	d.pending = append(d.pending, c)
	d.mu.Unlock()
	if first {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

func (d *delayedFlusher) run() {
	defer d.wg.Done()
	var batch []*conn
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-d.wake:
		}
		t.Reset(d.delay)
		select {
		case <-d.done:
			return
		case <-t.C:
		}
		d.mu.Lock()
		batch, d.pending = d.pending, batch[:0]
		d.mu.Unlock()
		for i, c := range batch {
			d.writers.schedule(c)
			batch[i] = nil
		}
	}
}

func (d *delayedFlusher) close() {
	close(d.done)
	d.wg.Wait()
	d.mu.Lock()
	pending := d.pending
	d.pending = nil
	d.mu.Unlock()
	for _, c := range pending {
		d.writers.schedule(c)
	}
}
