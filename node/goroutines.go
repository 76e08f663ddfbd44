package node

import (
	"sync"
	"sync/atomic"
	"time"
)

// goroutines tracks every goroutine the node starts (and every timer whose
// function will run on a goroutine of its own), so that Run returns only once
// all of them have ended and a test can assert that none is left. Start them
// with Go and AfterFunc, never with a bare go statement or time.AfterFunc.
// See CONCURRENCY.md for who starts what and how each one stops.
//
// A group (see group) is a subset of a tracker that can be waited for on its
// own: its goroutines count in its parent too.
type goroutines struct {
	parent  *goroutines    // counts this group's goroutines too; nil for the node's own
	running sync.WaitGroup // one per goroutine started and not ended, pending timers included
	n       atomic.Int64   // the same number, for count

	mu     sync.Mutex             // guards the following
	timers map[*time.Timer]func() // pending AfterFunc timers and their functions
	firing bool                   // stopping: AfterFunc runs its function at once
}

func newGoroutines() *goroutines {
	return &goroutines{timers: make(map[*time.Timer]func())}
}

// group returns a new subset of g: what it starts is tracked by g as well,
// and its wait waits for its own goroutines only.
func (g *goroutines) group() *goroutines {
	sub := newGoroutines()
	sub.parent = g
	return sub
}

// add counts one more goroutine in g and its parents.
func (g *goroutines) add() {
	for ; g != nil; g = g.parent {
		g.n.Add(1)
		g.running.Add(1)
	}
}

// done counts one goroutine as ended in g and its parents.
func (g *goroutines) done() {
	for ; g != nil; g = g.parent {
		g.n.Add(-1)
		g.running.Done()
	}
}

// Go runs f on a new tracked goroutine.
func (g *goroutines) Go(f func()) {
	g.add()
	go func() {
		defer g.done()
		f()
	}()
}

// AfterFunc runs f on a tracked goroutine after d, or at once when the node
// stops (fireTimers), whichever comes first. A pending timer counts as a
// running goroutine, so Run cannot return before f has run.
func (g *goroutines) AfterFunc(d time.Duration, f func()) {
	g.add()
	g.mu.Lock()
	defer g.mu.Unlock() // the timer's function waits for this before it reads t
	if g.firing {
		go func() { // counted above
			defer g.done()
			f()
		}()
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		g.mu.Lock()
		delete(g.timers, t)
		g.mu.Unlock()
		defer g.done()
		f()
	})
	g.timers[t] = f
}

// fireTimers runs the functions of g's pending timers now, each on its own
// tracked goroutine, and those of timers set from now on at once (shutdown:
// closers and lingering sockets end at once).
func (g *goroutines) fireTimers() {
	g.mu.Lock()
	g.firing = true
	var now []func()
	for t, f := range g.timers {
		if t.Stop() { // stopped before it fired: f is ours to run
			now = append(now, f)
		}
		delete(g.timers, t)
	}
	g.mu.Unlock()
	for _, f := range now {
		go func() { // counted already, by AfterFunc
			defer g.done()
			f()
		}()
	}
}

// wait returns once every goroutine of g has ended. As with any
// sync.WaitGroup, nothing may start a goroutine on g (or on a group of g)
// from none running while a wait is in progress: wait at shutdown, once
// what starts them has stopped (a tracked goroutine may start more, as it
// keeps g busy until it ends).
func (g *goroutines) wait() { g.running.Wait() }

// waitFor is wait bounded by timeout: it returns false when goroutines of g
// are still running then. Its waiter goroutine ends with the last of them,
// and is a wait in progress until then.
func (g *goroutines) waitFor(timeout time.Duration) bool {
	ended := make(chan struct{})
	go func() { // the tracker's own: it cannot track itself
		g.wait()
		close(ended)
	}()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case <-ended:
		return true
	case <-deadline.C:
		return false
	}
}

// count returns how many goroutines of g are running (timers included).
func (g *goroutines) count() int { return int(g.n.Load()) }
