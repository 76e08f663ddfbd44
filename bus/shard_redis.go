package bus

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// maxRepairTake bounds how many chats one repair pipeline reads.
const maxRepairTake = 128

// shard is one pub/sub connection: the channels mapped to it, a reader
// goroutine that drains go-redis's channel and calls the handler, and a
// repair goroutine that reads gaps back from the streams.
type shard struct {
	r   *Redis
	h   Handler
	log zerolog.Logger

	repairWake chan struct{}     // cap 1: repairQ is not empty
	repaired   chan repairResult // repair goroutine -> reader
	swap       chan (<-chan any) // sharded: hands the reader a new connection's messages (or nil)

	// Sharded pub/sub only (see sharded_redis.go).
	sharded   bool
	probeName string        // this broker's probe channel in the partition's slot
	renewWake chan struct{} // cap 1: the watcher should replace the connection now
	probeSeen atomic.Int64  // unix ns of the last probe received (or of the connection's start)

	subMu sync.Mutex    // serializes subscribe/unsubscribe/renew on this shard; guards ps
	ps    *redis.PubSub // sharded: nil while the shard has no channel

	mu      sync.Mutex               // guards the following fields and subState's chat fields
	chans   map[string]*subState     // subscribed channels by Redis name
	waiters map[string]chan struct{} // subscribe calls awaiting Redis's confirmation
	repairQ map[*subState]struct{}   // chats waiting for the repair goroutine
}

// subState is one subscribed channel.
type subState struct {
	name   string
	ch     Channel
	stream string // chat only

	// Chat de-duplication and repair state, guarded by shard.mu.
	last      string      // last delivered eventId (at first: the stream's last id at subscribe)
	repairing bool        // a repair is queued or running; live events wait in buf
	again     bool        // a repair was requested while one was running
	buf       []liveEvent // live events received during the repair
	overflow  bool        // buf was full and dropped events: read the stream again
}

type liveEvent struct {
	id, prev, event string
	data            json.RawMessage
}

type repairResult struct {
	st     *subState
	events []Event
}

func (sh *shard) subscribe(ctx context.Context, ch Channel, name string) error {
	sh.subMu.Lock()
	defer sh.subMu.Unlock()
	sh.mu.Lock()
	_, ok := sh.chans[name]
	sh.mu.Unlock()
	if ok {
		return nil
	}
	st := &subState{name: name, ch: ch}
	if ch.Kind == KindChat {
		st.stream = sh.r.streamKey(ch.ID)
		top, err := sh.r.client.XRevRangeN(ctx, st.stream, "+", "-", 1).Result()
		if err != nil {
			return unavailable("subscribe", err)
		}
		st.last = "0-0"
		if len(top) > 0 {
			st.last = top[0].ID
		}
	}
	wait := make(chan struct{})
	sh.mu.Lock()
	sh.chans[name] = st
	sh.waiters[name] = wait
	sh.mu.Unlock()
	if err := sh.subscribeName(ctx, name); err != nil {
		sh.rollback(name)
		return unavailable("subscribe", err)
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		sh.rollback(name)
		return unavailable("subscribe", ctx.Err())
	case <-sh.r.closeCh:
		return ErrClosed
	}
}

// rollback forgets a subscription that was not confirmed. subMu must be held.
func (sh *shard) rollback(name string) {
	sh.forget(name)
	// go-redis keeps the channel in its set even when SUBSCRIBE failed, and
	// would subscribe it on reconnect: remove it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = sh.unsubscribeName(ctx, name)
}

// forget drops name's state.
func (sh *shard) forget(name string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if st := sh.chans[name]; st != nil {
		delete(sh.repairQ, st)
		delete(sh.chans, name)
	}
	delete(sh.waiters, name)
}

func (sh *shard) unsubscribe(ctx context.Context, name string) {
	sh.subMu.Lock()
	defer sh.subMu.Unlock()
	sh.mu.Lock()
	_, ok := sh.chans[name]
	sh.mu.Unlock()
	if !ok {
		return
	}
	sh.forget(name)
	// go-redis removes name from its set before writing UNSUBSCRIBE; if the
	// write fails, the connection is replaced without it.
	if err := sh.unsubscribeName(ctx, name); err != nil {
		sh.log.Debug().Err(err).Str("channel", name).Msg("unsubscribe not sent; dropped locally")
	}
}

// subscribeName sends SUBSCRIBE (SSUBSCRIBE when sharded). subMu must be held.
func (sh *shard) subscribeName(ctx context.Context, name string) error {
	if !sh.sharded {
		return sh.ps.Subscribe(ctx, name)
	}
	if sh.ps == nil {
		return sh.connect(ctx, false, name)
	}
	return sh.ps.SSubscribe(ctx, name)
}

// unsubscribeName sends UNSUBSCRIBE (SUNSUBSCRIBE when sharded; the shard's
// connection is closed with its last channel). subMu must be held.
func (sh *shard) unsubscribeName(ctx context.Context, name string) error {
	if !sh.sharded {
		return sh.ps.Unsubscribe(ctx, name)
	}
	if sh.ps == nil {
		return nil
	}
	sh.mu.Lock()
	empty := len(sh.chans) == 0
	sh.mu.Unlock()
	if empty {
		sh.disconnect()
		return nil
	}
	return sh.ps.SUnsubscribe(ctx, name)
}

// read drains go-redis's channel (msgs; when sharded, the current one handed
// over on sh.swap) until Close, handling subscription confirmations, messages
// and repair results, and calls the handler outside the lock.
func (sh *shard) read(msgs <-chan any) {
	defer sh.r.wg.Done()
	var out []Delivery
	for {
		out = out[:0]
		select {
		case m, ok := <-msgs:
			if !ok {
				if sh.r.isClosed() {
					return
				}
				msgs = nil // replaced: the next one comes on sh.swap
				continue
			}
			if sh.r.isClosed() {
				continue // keep draining so go-redis's reader can stop
			}
			switch m := m.(type) {
			case *redis.Message:
				out = sh.onMessage(m, out)
			case *redis.Subscription:
				sh.onSubscription(m)
			}
		case next := <-sh.swap:
			if msgs != nil {
				drain(&sh.r.wg, msgs) // its connection was closed: let go-redis's reader stop
			}
			msgs = next
		case <-sh.r.closeCh:
			if msgs == nil {
				return
			}
			drain(&sh.r.wg, msgs) // Close closes the connection
			return
		case res := <-sh.repaired:
			out = sh.onRepaired(res, out)
		}
		for i := range out {
			if sh.r.isClosed() {
				break
			}
			sh.h(out[i])
			out[i] = Delivery{}
		}
	}
}

func (sh *shard) onSubscription(m *redis.Subscription) {
	if m.Kind == "sunsubscribe" {
		sh.onServerUnsubscribe(m.Channel)
		return
	}
	if (m.Kind != "subscribe" && m.Kind != "ssubscribe") || m.Channel == sh.probeName {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if w, ok := sh.waiters[m.Channel]; ok {
		close(w)
		delete(sh.waiters, m.Channel)
		return
	}
	st := sh.chans[m.Channel]
	if st == nil {
		return
	}
	// Confirmation of a subscription we already had: go-redis reconnected and
	// resubscribed. Whatever was published in between is lost to pub/sub.
	// Redis confirms a resubscription channel by channel, counting from 1.
	if m.Count == 1 {
		sh.log.Info().Msg("pub/sub resubscribed after reconnect; repairing chat gaps from history")
	}
	if st.ch.Kind != KindChat {
		sh.log.Debug().Str("channel", m.Channel).Msg("resubscribed; ephemeral events in between are lost")
		return
	}
	sh.log.Debug().Str("channel", m.Channel).Str("after", st.last).Msg("resubscribed; repairing gap from history")
	sh.startRepair(st)
}

// startRepair queues st for the repair goroutine. Lock must be held.
func (sh *shard) startRepair(st *subState) {
	if st.repairing {
		st.again = true
		return
	}
	st.repairing = true
	sh.repairQ[st] = struct{}{}
	select {
	case sh.repairWake <- struct{}{}:
	default:
	}
}

func (sh *shard) onMessage(m *redis.Message, out []Delivery) []Delivery {
	if sh.sharded && m.Channel == sh.probeName {
		sh.probeSeen.Store(time.Now().UnixNano())
		return out
	}
	id, prev, event, data, ok := parseEnvelope(m.Payload)
	if !ok {
		sh.log.Warn().Str("channel", m.Channel).Msg("malformed envelope dropped")
		return out
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := sh.chans[m.Channel]
	if st == nil {
		return out // unsubscribed, or not confirmed yet: in flight
	}
	if id == "" || st.ch.Kind != KindChat {
		return append(out, Delivery{Channel: st.ch, EventID: id, Event: event, Data: data})
	}
	return sh.onChatEvent(st, liveEvent{id: id, prev: prev, event: event, data: data}, out)
}

// onChatEvent delivers a chat's live event at most once and in order: it is
// dropped if not after the last delivered one, and held back (while the gap is
// read from the stream) if its predecessor was not delivered. Lock must be held.
func (sh *shard) onChatEvent(st *subState, ev liveEvent, out []Delivery) []Delivery {
	if st.repairing {
		if len(st.buf) >= sh.r.size {
			st.buf = st.buf[:0]
			st.overflow = true // everything dropped is in the stream: read it again
		} else if !st.overflow {
			st.buf = append(st.buf, ev)
		}
		return out
	}
	if CompareIDs(ev.id, st.last) <= 0 {
		return out
	}
	if ev.prev != "" && CompareIDs(ev.prev, st.last) > 0 {
		sh.log.Info().Str("channel", st.name).Str("after", st.last).Str("prev", ev.prev).Msg("gap before a live event; repairing from history")
		st.buf = append(st.buf, ev)
		sh.startRepair(st)
		return out
	}
	st.last = ev.id
	return append(out, Delivery{Channel: st.ch, EventID: ev.id, Event: ev.event, Data: ev.data})
}

// onRepaired delivers what a repair read from the stream, then the live events
// held back meanwhile, through the same de-duplicating path.
func (sh *shard) onRepaired(res repairResult, out []Delivery) []Delivery {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := res.st
	if sh.chans[st.name] != st {
		return out // unsubscribed meanwhile
	}
	n := 0
	for _, e := range res.events {
		if CompareIDs(e.EventID, st.last) > 0 {
			st.last = e.EventID
			out = append(out, Delivery{Channel: st.ch, EventID: e.EventID, Event: e.Event, Data: e.Data})
			n++
		}
	}
	sh.log.Debug().Str("channel", st.name).Int("events", n).Msg("gap repaired")
	if st.again || st.overflow {
		// Another reconnect, or too many live events, during the read: read again.
		st.again = false
		if st.overflow {
			st.overflow = false
			st.buf = st.buf[:0]
		}
		sh.repairQ[st] = struct{}{}
		select {
		case sh.repairWake <- struct{}{}:
		default:
		}
		return out
	}
	st.repairing = false
	buf := st.buf
	st.buf = nil
	for _, ev := range buf {
		out = sh.onChatEvent(st, ev, out)
	}
	return out
}

type repairJob struct {
	st   *subState
	from string
	cmd  *redis.XMessageSliceCmd
}

// repairLoop reads the gaps of queued chats from their streams, up to
// maxRepairTake chats per pipeline, retrying with backoff while Redis fails.
func (sh *shard) repairLoop() {
	defer sh.r.wg.Done()
	backoff := 50 * time.Millisecond
	var jobs []repairJob
	for {
		select {
		case <-sh.r.closeCh:
			return
		case <-sh.repairWake:
		}
		for {
			jobs = sh.takeRepairs(jobs[:0])
			if len(jobs) == 0 {
				break
			}
			err := sh.fetch(jobs)
			if err != nil {
				sh.log.Warn().Err(err).Int("chats", len(jobs)).Dur("retry_in_ms", backoff).Msg("gap repair failed")
				sh.requeue(jobs)
				select {
				case <-sh.r.closeCh:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 2*time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
			for _, j := range jobs {
				select {
				case sh.repaired <- repairResult{st: j.st, events: toEvents(j.cmd.Val())}:
				case <-sh.r.closeCh:
					return
				}
			}
			clear(jobs)
		}
	}
}

// takeRepairs moves up to maxRepairTake queued chats into jobs, noting where
// each one's gap starts.
func (sh *shard) takeRepairs(jobs []repairJob) []repairJob {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for st := range sh.repairQ {
		if len(jobs) == maxRepairTake {
			break
		}
		delete(sh.repairQ, st)
		jobs = append(jobs, repairJob{st: st, from: st.last})
	}
	return jobs
}

func (sh *shard) requeue(jobs []repairJob) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, j := range jobs {
		if sh.chans[j.st.name] == j.st {
			sh.repairQ[j.st] = struct{}{}
		}
	}
}

func (sh *shard) fetch(jobs []repairJob) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sh.r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range jobs {
			// The stream holds at most size entries: one read gets the whole gap.
			jobs[i].cmd = p.XRangeN(ctx, jobs[i].st.stream, "("+jobs[i].from, "+", int64(sh.r.size))
		}
		return nil
	})
	return err
}

// parseEnvelope splits "<eventId>\n<prevId>\n<event>\n<data>".
func parseEnvelope(s string) (id, prev, event string, data json.RawMessage, ok bool) {
	var parts [3]string
	for i := range parts {
		n := strings.IndexByte(s, '\n')
		if n < 0 {
			return "", "", "", nil, false
		}
		parts[i], s = s[:n], s[n+1:]
	}
	if s != "" {
		data = json.RawMessage(s)
	}
	return parts[0], parts[1], parts[2], data, true
}
