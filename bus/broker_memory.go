package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemoryConfig configures [NewMemory]. The zero value works.
type MemoryConfig struct {
	// HistorySize is how many events each chat retains. Default 1000.
	HistorySize int
	// HistoryTTL drops a chat's history when nothing was appended to it for this
	// long, and bounds a message's life: a message older than HistoryTTL can no
	// longer be edited, deleted or reacted to. Default 24h.
	HistoryTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults shared by both brokers.
const (
	DefaultHistorySize = 1000
	DefaultHistoryTTL  = 24 * time.Hour
)

var (
	// errNotStarted: Subscribe before Start.
	errNotStarted = errors.New("bus: Start not called")
	// errEventName: event names travel in a newline-separated envelope.
	errEventName = errors.New("bus: event name contains a newline")
)

// sweepEvery is how often (by the injected clock) Append drops expired chats.
const sweepEvery = time.Minute

// Memory is the embedded single-node [Broker]: history lives in process
// memory, deliveries go to the handler from one goroutine owned by the broker,
// in the order events were appended or published.
type Memory struct {
	size int
	ttl  time.Duration
	now  func() time.Time

	mu        sync.Mutex // guards the following fields
	closed    bool
	started   bool
	chats     map[string]*memChat
	subs      map[Channel]struct{}
	pending   []Delivery // queued for the delivery goroutine
	lastSweep time.Time

	wake chan struct{} // cap 1: pending is not empty
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the delivery goroutine exits
}

// memChat is one chat's history. Guarded by Memory.mu.
type memChat struct {
	ring       []Event // capacity HistorySize; oldest at head
	head, n    int
	last       eventID // last issued id
	lastAppend time.Time
	msgs       map[string]*memMsg // by MessageID, only for retained messages
}

type memMsg struct {
	author    string
	deleted   bool
	created   time.Time
	reactions map[reaction]struct{}
}

type reaction struct{ user, emoji string }

var _ Broker = (*Memory)(nil)

// NewMemory returns a memory broker. Call Start before Subscribe.
func NewMemory(cfg MemoryConfig) *Memory {
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	if cfg.HistoryTTL <= 0 {
		cfg.HistoryTTL = DefaultHistoryTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Memory{
		size:  cfg.HistorySize,
		ttl:   cfg.HistoryTTL,
		now:   cfg.Now,
		chats: make(map[string]*memChat),
		subs:  make(map[Channel]struct{}),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// Start starts the delivery goroutine. It fails if called twice.
func (m *Memory) Start(h Handler) error {
	if h == nil {
		return errors.New("bus: nil handler")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.started {
		return errors.New("bus: already started")
	}
	m.started = true
	go m.deliver(h)
	return nil
}

// deliver runs until Close, handing queued deliveries to h outside the lock.
func (m *Memory) deliver(h Handler) {
	defer close(m.done)
	var batch []Delivery
	for {
		select {
		case <-m.stop:
			return
		case <-m.wake:
		}
		m.mu.Lock()
		batch, m.pending = m.pending, batch[:0]
		m.mu.Unlock()
		for i := range batch {
			select {
			case <-m.stop:
				return
			default:
			}
			h(batch[i])
			batch[i] = Delivery{}
		}
	}
}

// enqueue queues d if ch is subscribed. Lock must be held.
func (m *Memory) enqueue(d Delivery) {
	if _, ok := m.subs[d.Channel]; !ok || !m.started {
		return
	}
	m.pending = append(m.pending, d)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Subscribe registers interest in ch; deliveries for it start at once.
func (m *Memory) Subscribe(ctx context.Context, ch Channel) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if !m.started {
		return errNotStarted
	}
	m.subs[ch] = struct{}{}
	return nil
}

// Unsubscribe drops the interest in ch. Deliveries already queued still arrive.
func (m *Memory) Unsubscribe(ctx context.Context, ch Channel) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.subs, ch)
	return nil
}

// Publish queues an ephemeral event for ch's subscriber (this node).
func (m *Memory) Publish(ctx context.Context, ch Channel, event string, data json.RawMessage) error {
	if strings.IndexByte(event, '\n') >= 0 {
		return errEventName
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.enqueue(Delivery{Channel: ch, Event: event, Data: data})
	return nil
}

// Append performs op on chatID's history and queues its event for delivery
// before returning.
func (m *Memory) Append(ctx context.Context, chatID string, op Op) (Result, error) {
	if strings.IndexByte(op.Event, '\n') >= 0 {
		return Result{}, errEventName
	}
	if op.Kind == OpSend {
		if len(op.Data) == 0 {
			op.Data = json.RawMessage("{}")
		} else if _, _, ok := splitObject(op.Data); !ok {
			return Result{}, fmt.Errorf("bus: append: %w", errNotObject)
		}
	} else if op.Kind < OpSend || op.Kind > OpReactRemove {
		return Result{}, fmt.Errorf("bus: append: unknown op kind %d", op.Kind)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Result{}, ErrClosed
	}
	if now.Sub(m.lastSweep) >= sweepEvery {
		m.sweep(now)
	}
	c := m.chat(chatID, now)

	if op.Kind == OpSend {
		id := c.nextID(now)
		data := SpliceFields(op.Data, "messageId", id)
		c.push(Event{EventID: id, Event: op.Event, Data: data}, m.size)
		c.msgs[id] = &memMsg{author: op.UserID, created: now}
		c.lastAppend = now
		m.enqueue(Delivery{Channel: Chat(chatID), EventID: id, Event: op.Event, Data: data})
		return Result{EventID: id, MessageID: id, Changed: true}, nil
	}

	msg := c.msgs[op.MessageID]
	if msg == nil || msg.deleted || now.Sub(msg.created) >= m.ttl {
		return Result{}, fmt.Errorf("bus: append: %w", ErrNotFound)
	}
	switch op.Kind {
	case OpEdit, OpDelete:
		if msg.author != op.UserID {
			return Result{}, fmt.Errorf("bus: append: %w", ErrForbidden)
		}
		if op.Kind == OpDelete {
			msg.deleted = true
		}
	case OpReactAdd, OpReactRemove:
		r := reaction{op.UserID, op.Emoji}
		_, had := msg.reactions[r]
		if had == (op.Kind == OpReactAdd) {
			return Result{MessageID: op.MessageID}, nil
		}
		if op.Kind == OpReactAdd {
			if msg.reactions == nil {
				msg.reactions = make(map[reaction]struct{})
			}
			msg.reactions[r] = struct{}{}
		} else {
			delete(msg.reactions, r)
		}
	}
	id := c.nextID(now)
	c.push(Event{EventID: id, Event: op.Event, Data: op.Data}, m.size)
	c.lastAppend = now
	m.enqueue(Delivery{Channel: Chat(chatID), EventID: id, Event: op.Event, Data: op.Data})
	return Result{EventID: id, MessageID: op.MessageID, Changed: true}, nil
}

// chat returns chatID's history, emptied if it expired. Lock must be held.
func (m *Memory) chat(chatID string, now time.Time) *memChat {
	c := m.chats[chatID]
	if c == nil {
		c = &memChat{ring: make([]Event, m.size), msgs: make(map[string]*memMsg)}
		m.chats[chatID] = c
	} else if c.expired(now, m.ttl) {
		c.reset()
	}
	return c
}

// sweep drops expired chats (keeping nothing but memory bounded). Lock must be held.
func (m *Memory) sweep(now time.Time) {
	m.lastSweep = now
	for id, c := range m.chats {
		if c.expired(now, m.ttl) {
			delete(m.chats, id)
		}
	}
}

func (c *memChat) expired(now time.Time, ttl time.Duration) bool {
	return c.n > 0 && now.Sub(c.lastAppend) >= ttl
}

func (c *memChat) reset() {
	clear(c.ring)
	c.head, c.n = 0, 0
	clear(c.msgs)
}

func (c *memChat) nextID(now time.Time) string {
	ms := now.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	c.last = c.last.next(uint64(ms))
	return c.last.String()
}

// push appends e, trimming the oldest event (and its message) when full.
func (c *memChat) push(e Event, size int) {
	if c.n == size {
		old := c.ring[c.head]
		delete(c.msgs, old.EventID) // no-op unless it was a new message
		c.ring[c.head] = e
		c.head = (c.head + 1) % size
		return
	}
	c.ring[(c.head+c.n)%size] = e
	c.n++
}

func (c *memChat) at(i int) *Event { return &c.ring[(c.head+i)%len(c.ring)] }

// Since returns up to limit events after afterEventID, oldest first; limit <=
// 0 means all retained. recovered is true iff afterEventID is well-formed and
// not older than the oldest retained event, so nothing after it is missing.
// For a malformed id it returns the newest limit events and false; for an id
// older than the history, the oldest retained ones and false; for an empty
// (or expired) history, nothing and false.
func (m *Memory) Since(ctx context.Context, chatID, afterEventID string, limit int) ([]Event, bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false, ErrClosed
	}
	c := m.chats[chatID]
	if c == nil || c.n == 0 || c.expired(now, m.ttl) {
		return nil, false, nil
	}
	if limit <= 0 || limit > c.n {
		limit = c.n
	}
	after, ok := parseID(afterEventID)
	if !ok {
		return c.copyRange(c.n-limit, c.n), false, nil
	}
	first, _ := parseID(c.at(0).EventID)
	recovered := after.compare(first) >= 0
	start := sort.Search(c.n, func(i int) bool {
		id, _ := parseID(c.at(i).EventID)
		return id.compare(after) > 0
	})
	return c.copyRange(start, min(start+limit, c.n)), recovered, nil
}

func (c *memChat) copyRange(from, to int) []Event {
	if from >= to {
		return nil
	}
	out := make([]Event, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, *c.at(i))
	}
	return out
}

// Close stops deliveries (queued ones are dropped) and waits for the delivery
// goroutine. Idempotent. Must not be called from the handler.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	started := m.started
	m.pending = nil
	m.mu.Unlock()
	close(m.stop)
	if started {
		<-m.done
	}
	return nil
}
