package node

import (
	"sync"
	"sync/atomic"
	"time"
)

// fanoutExpiry drops a send whose fan-out never came (its sender's
// connections left the chat, so this node unsubscribed; or the event is
// still in a pub/sub gap): it is not observed.
const fanoutExpiry = time.Minute

// fanoutEarlyMax caps the fan-outs remembered for one chat while it has
// appends in flight: a busy chat may never be without one, and fan-outs of
// other nodes' messages are never claimed here. Past the cap the chat's
// memory starts over; a send whose entry was dropped then waits and expires
// unobserved (a lost sample, never a wrong one).
const fanoutEarlyMax = 1024

// fanoutClock measures realtime_send_fanout_seconds: on the node that
// received a send_message, from the event's dispatch to the moment this
// node queued the resulting new_message frames to its local recipients.
// The event reaches those recipients the way every event does: the bus
// delivers it back to this node (through Redis pub/sub on the Redis
// engines), which fans it out (hub.toChat). So the figure covers the
// handler, the append and its Redis round trip, the pub/sub delivery and
// the local fan-out; other nodes' fan-outs of the same message are not in
// it.
//
// The two ends meet by chat and event id, in either order, since the bus
// may deliver the event before Append returns its id: while a send to a
// chat is in its append, fan-outs of that chat's new_message events are
// remembered (early); after the append, the send finds its own there, or
// waits for it (waiting).
type fanoutClock struct {
	observe func(time.Duration)
	// active counts appends in progress and sends waiting: fannedOut
	// returns without the lock while it is 0.
	active atomic.Int64

	mu        sync.Mutex                      // guards the following
	appending map[string]int                  // chat → sends in their append
	waiting   map[eventKey]time.Time          // appended sends whose fan-out has not come: their dispatch time
	early     map[string]map[string]time.Time // chat → event id → fan-out time, kept while the chat has appends in progress
}

type eventKey struct{ chat, id string }

func newFanoutClock(observe func(time.Duration)) *fanoutClock {
	return &fanoutClock{observe: observe, appending: make(map[string]int),
		waiting: make(map[eventKey]time.Time), early: make(map[string]map[string]time.Time)}
}

// begin is called before a send's append to chat; appended must follow.
func (f *fanoutClock) begin(chat string) {
	f.active.Add(1)
	f.mu.Lock()
	f.appending[chat]++
	f.mu.Unlock()
}

// appended ends begin: id is the new event's id, "" when nothing was
// appended; received is when the send was dispatched.
func (f *fanoutClock) appended(chat, id string, received time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var fanned time.Time
	if id != "" {
		fanned = f.early[chat][id]
		delete(f.early[chat], id)
	}
	if f.appending[chat]--; f.appending[chat] <= 0 {
		delete(f.appending, chat)
		delete(f.early, chat)
	}
	switch {
	case id == "":
		f.active.Add(-1)
	case !fanned.IsZero():
		f.active.Add(-1)
		f.observe(fanned.Sub(received))
	default:
		f.waiting[eventKey{chat, id}] = received // still active
	}
}

// fannedOut is called once the frames of chat's new_message id are queued
// to this node's recipients.
func (f *fanoutClock) fannedOut(chat, id string) {
	if f.active.Load() == 0 {
		return
	}
	f.fannedOutAt(chat, id, time.Now())
}

// fannedOutAt is fannedOut at a given time (tests).
func (f *fanoutClock) fannedOutAt(chat, id string, at time.Time) {
	if f.active.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := eventKey{chat, id}
	if received, ok := f.waiting[k]; ok {
		delete(f.waiting, k)
		f.active.Add(-1)
		f.observe(at.Sub(received))
		return
	}
	if f.appending[chat] > 0 {
		m := f.early[chat]
		if len(m) >= fanoutEarlyMax {
			m = nil
		}
		if m == nil {
			m = make(map[string]time.Time)
			f.early[chat] = m
		}
		m[id] = at
	}
}

// expire drops the sends that waited longer than fanoutExpiry.
func (f *fanoutClock) expire(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, received := range f.waiting {
		if now.Sub(received) > fanoutExpiry {
			delete(f.waiting, k)
			f.active.Add(-1)
		}
	}
}
