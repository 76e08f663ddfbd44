package node

import (
	"context"
	"sync"
	"time"

	"github.com/anchat/realtime/bus"
)

// Engine cleanup (presence releases, bus unsubscribes) runs on one goroutine
// of its own, the cleaner, never inline where a connection closes or leaves a
// chat: those places are writer-pool goroutines, the heartbeat sweeper and
// the bus reader, which carry every other connection's writes, pings and
// deliveries, and one Redis call there could stall them all for an engine
// timeout. The idea is centrifuge's "dissolver": queue the job, wait a
// moment, re-check the wanted state (a member who re-joined meanwhile keeps
// the subscription), and work through the queue in batches.
//
// Nothing in the cleaner is needed for correctness of deliveries: an
// unsubscribe that comes late only delivers events nobody local wants, and a
// presence entry not yet released counts against its user's cap a little
// longer (or, with the engine down, until it is reachable again).

const (
	// unsubscribeDelay is how long a channel without local members stays
	// subscribed, so that a quick re-join (a page reload, leave then join)
	// costs no round trip.
	unsubscribeDelay = 250 * time.Millisecond
	// cleanupRetry is how soon releases are retried while the engine is down.
	cleanupRetry = time.Second
	// maxPendingReleases bounds the releases kept while the engine is down;
	// beyond it the oldest are given up (their entries expire when this node
	// stops refreshing them).
	maxPendingReleases = 1 << 16
	// cleanupDrainTimeout bounds the work done for what is pending when the
	// node stops.
	cleanupDrainTimeout = 3 * time.Second
)

// slotKey is one presence entry to release.
type slotKey struct{ userID, connID string }

// cleaner is the goroutine that makes engine calls for closing connections
// and leaving members. Its owner is the server: started in newServer,
// stopped by run after every connection is closed (stop drains what is
// pending, bounded by cleanupDrainTimeout).
type cleaner struct {
	srv  *server
	wake chan struct{} // cap 1: something was queued
	quit chan struct{} // closed by stop
	done chan struct{} // closed when run has returned

	mu       sync.Mutex                // guards the following
	channels map[bus.Channel]time.Time // channels to re-check, with when they were queued
	releases []slotKey                 // presence entries to release, oldest first
	given    int                       // releases given up because the queue was full
	working  int                       // jobs work has taken and not yet done or queued again
}

func newCleaner(srv *server) *cleaner {
	return &cleaner{
		srv:      srv,
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		channels: make(map[bus.Channel]time.Time),
	}
}

// unsubscribeLater asks for ch's subscription to be re-checked after
// unsubscribeDelay, and dropped if no local connection wants it then.
func (cl *cleaner) unsubscribeLater(ch bus.Channel) {
	cl.mu.Lock()
	if _, ok := cl.channels[ch]; !ok {
		cl.channels[ch] = time.Now()
	}
	cl.mu.Unlock()
	cl.signal()
}

// release asks for a presence entry to be released (at once, unless the
// engine is down).
func (cl *cleaner) release(userID, connID string) {
	cl.mu.Lock()
	if len(cl.releases) >= maxPendingReleases {
		cl.releases = cl.releases[1:]
		cl.given++
	}
	cl.releases = append(cl.releases, slotKey{userID, connID})
	cl.mu.Unlock()
	cl.signal()
}

func (cl *cleaner) signal() {
	select {
	case cl.wake <- struct{}{}:
	default:
	}
}

// pending returns the number of jobs not done yet, those in work's hands
// included (tests, stats): with the engine down, a batch blocked in its
// first call is still pending.
func (cl *cleaner) pending() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.channels) + len(cl.releases) + cl.working
}

// run is the cleaner's goroutine.
func (cl *cleaner) run() {
	defer close(cl.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-cl.quit:
			cl.drain()
			return
		case <-cl.wake:
		case <-t.C:
		}
		next := cl.work(context.Background(), time.Now().Add(-unsubscribeDelay))
		if next > 0 {
			t.Reset(next)
		}
	}
}

// work releases what can be released and re-checks the channels queued
// before due; it returns when to run again (0: nothing is left).
func (cl *cleaner) work(parent context.Context, due time.Time) (next time.Duration) {
	cl.mu.Lock()
	var releases []slotKey
	if !cl.srv.engineDown.Load() {
		releases, cl.releases = cl.releases, nil
	}
	given := cl.given
	cl.given = 0
	var channels []bus.Channel
	var oldest time.Time
	for ch, at := range cl.channels {
		if at.After(due) {
			if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
			continue
		}
		channels = append(channels, ch)
		delete(cl.channels, ch)
	}
	cl.working = len(releases) + len(channels)
	cl.mu.Unlock()
	if given > 0 {
		cl.srv.log.Warn().Int("given_up", given).Msg("presence releases queue full; oldest given up (they expire with this node)")
	}

	var retry []slotKey
	for i, k := range releases {
		if parent.Err() != nil || cl.srv.engineDown.Load() {
			retry = append(retry, releases[i:]...)
			break
		}
		if err := cl.srv.presence.release(parent, k.userID, k.connID); err != nil {
			if isUnavailable(err) {
				// The next would most likely wait as long: keep the rest
				// for later rather than spend an engine timeout on each.
				retry = append(retry, releases[i:]...)
				break
			}
			cl.srv.log.Warn().Err(err).Str("user", k.userID).Str("conn", k.connID).Msg("presence release failed")
		}
	}
	for _, ch := range channels {
		ctx, cancel := context.WithTimeout(parent, cl.srv.engineTimeout())
		if err := cl.srv.hub.sync(ctx, ch); err != nil {
			cl.srv.log.Warn().Err(err).Str("channel", ch.ID).Msg("bus unsubscribe failed")
		}
		cancel()
	}

	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.working = 0
	if len(retry) > 0 {
		cl.releases = append(retry, cl.releases...)
		if over := len(cl.releases) - maxPendingReleases; over > 0 { // the oldest go, as in release
			cl.releases = cl.releases[over:]
			cl.given += over
		}
	}
	switch {
	case len(cl.releases) > 0 && cl.srv.engineDown.Load(), len(retry) > 0:
		next = cleanupRetry
	case len(cl.releases) > 0:
		next = time.Millisecond // queued while we worked
	}
	if !oldest.IsZero() {
		wait := max(time.Until(oldest.Add(unsubscribeDelay)), time.Millisecond)
		if next == 0 || wait < next {
			next = wait
		}
	}
	return next
}

// drain does what is pending at once (no unsubscribe delay), bounded by
// cleanupDrainTimeout; releases are skipped while the engine is down.
func (cl *cleaner) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupDrainTimeout)
	defer cancel()
	for cl.pending() > 0 && ctx.Err() == nil {
		if cl.work(ctx, time.Now()) >= cleanupRetry {
			break // the engine is down: the entries expire with this node
		}
	}
	if n := cl.pending(); n > 0 {
		cl.srv.log.Warn().Int("pending", n).Msg("engine cleanup left undone at shutdown")
	}
}

// stop ends the cleaner after draining what is pending. Call it once every
// connection is closed, so nothing is queued after it.
func (cl *cleaner) stop() {
	close(cl.quit)
	<-cl.done
}
