package node

import (
	"sync"
	"time"
)

// goroutines tracks every goroutine the node starts (and every timer whose
// function will run on a goroutine of its own), so that Run returns only once
// all of them have ended and a test can assert that none is left. Start them
// with Go and AfterFunc, never with a bare go statement or time.AfterFunc.
// See CONCURRENCY.md for who starts what and how each one stops.
type goroutines struct {
	mu      sync.Mutex             // guards the following
	running int                    // started and not ended, pending timers included
	timers  map[*time.Timer]func() // pending AfterFunc timers and their functions
	changed chan struct{}          // closed (and replaced) whenever a goroutine ends
	firing  bool                   // stopping: AfterFunc runs its function at once
}

func newGoroutines() *goroutines {
	return &goroutines{timers: make(map[*time.Timer]func()), changed: make(chan struct{})}
}

// add counts one more goroutine. g.mu must be held.
func (g *goroutines) add() { g.running++ }

// done counts one goroutine as ended.
func (g *goroutines) done() {
	g.mu.Lock()
	g.running--
	close(g.changed)
	g.changed = make(chan struct{})
	g.mu.Unlock()
}

// Go runs f on a new tracked goroutine.
func (g *goroutines) Go(f func()) {
	g.mu.Lock()
	g.add()
	g.mu.Unlock()
	go func() {
		defer g.done()
		f()
	}()
}

// AfterFunc runs f on a tracked goroutine after d, or at once when the node
// stops (fireTimers), whichever comes first. A pending timer counts as a
// running goroutine, so Run cannot return before f has run.
func (g *goroutines) AfterFunc(d time.Duration, f func()) {
	g.mu.Lock()
	defer g.mu.Unlock() // the timer's function waits for this before it reads t
	g.add()
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

// fireTimers runs the functions of all pending timers now, each on its own
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

// wait returns true once at most left tracked goroutines are running, or
// false after timeout.
func (g *goroutines) wait(timeout time.Duration, left int) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		g.mu.Lock()
		if g.running <= left {
			g.mu.Unlock()
			return true
		}
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// count returns how many tracked goroutines are running (timers included).
func (g *goroutines) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running
}
