package bus

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisprefix"
	"github.com/anchat/realtime/internal/redisscript"
	"github.com/anchat/realtime/limits"
)

// Redis layout. Every key and channel starts with the configured prefix and
// hash-tags its chat, user or profile, so one chat's keys share a Redis
// Cluster slot (and its Lua script touches one slot only):
//
//	rt:{chat:c1}            chat channel (pub/sub)
//	rt:{chat:c1}:h          history stream, ids are eventIds; fields e (event), d (data),
//	                        and a (author) on new_message entries
//	rt:{chat:c1}:m:<msgid>  written by a delete only: x (deleted); expires HistoryTTL after the
//	                        send (earlier versions kept a (author) here for every message)
//	rt:{chat:c1}:r:<msgid>  reactions set of "<user>\n<emoji>"; expires with its message
//	rt:{user:u1}            user channel
//	rt:{profile:p1}         RTM profile channel
//
// Every published message is an envelope, split at its first three newlines:
//
//	<eventId>\n<previous eventId>\n<event>\n<data>
//
// On a Redis Cluster client (see [RedisConfig.Partitions]) the hash tag is a
// partition's instead, "<prefix>:{<tag>}:chat:c1" and so on, and events travel
// by sharded pub/sub (SPUBLISH, SSUBSCRIBE): see sharded_redis.go.
//
// Ephemeral events have empty ids. The previous id (the stream's last entry
// before this one, empty if none) lets a subscriber notice an event it missed.
//
// A message is older than HistoryTTL when its id's millisecond is (the
// script compares it with Redis's clock): no key per message is written on a
// send, so a chat's messages cost Redis only their stream entries.
//
// Round trips: Append, AppendLimited and PublishLimited 1 (EVALSHA; EVAL
// once more if Redis lost the script), Publish 1, Since 1 (a pipeline),
// Subscribe 2 (read the stream's head, then SUBSCRIBE and wait for the
// confirmation), Unsubscribe 1 (not awaited).

var (
	//go:embed lua/append.lua
	appendLua string
	//go:embed lua/publish.lua
	publishLua string

	// Both scripts can count a rate limit with the limiter's own rule.
	appendScript  = redisscript.New(limits.WindowRuleLua + appendLua)
	publishScript = redisscript.NewOwned("bus.publish", limits.WindowRuleLua+publishLua) // a publish, not an append, in the Redis metrics
)

// RedisConfig configures [NewRedis]. The zero value works.
type RedisConfig struct {
	// Prefix starts every key and channel, so clusters can share a Redis.
	// Default "rt". It must not contain '{', '}' or a newline.
	Prefix string
	// HistorySize is how many events each chat's stream retains (exactly:
	// trimmed with MAXLEN, not MAXLEN ~). Default 1000.
	HistorySize int
	// HistoryTTL expires a chat's stream when nothing was appended for this
	// long, and a message's metadata this long after it was sent: an older
	// message can no longer be edited, deleted or reacted to. Default 24h.
	HistoryTTL time.Duration
	// PubSubShards is the number of pub/sub connections; a channel always
	// uses the same one (by hash of its name). Default 4.
	PubSubShards int
	// Partitions applies to a *redis.ClusterClient only, where events travel
	// by sharded pub/sub: every chat, user and profile is mapped (by hash of
	// its id) to one of Partitions hash tags, chosen so that the partitions
	// spread evenly over the 16384 slots. A node opens at most one pub/sub
	// connection per partition it has subscribers in, to that slot's master.
	// More partitions spread load over masters more evenly, fewer bound the
	// connections per node. Every node must use the same value: changing it
	// moves every chat to new keys (their history is left behind). Default
	// 128, at most 16384.
	Partitions int
	// ProbeInterval applies to sharded pub/sub only: how often each partition
	// with subscriptions checks, by SPUBLISHing to a channel of its own, that
	// its connection still receives from the slot's current master; three
	// missed probes (a failover, a moved slot, a lost resubscription) replace
	// the connection and repair every chat's gap from history. Default 1s.
	ProbeInterval time.Duration
	// Logger receives reconnect and repair events. Zero value: disabled.
	Logger zerolog.Logger
}

// Redis is the cluster [Broker]: a capped stream per chat, appended and
// published in one Lua script; subscriptions spread over a fixed set of
// pub/sub connections; after a pub/sub reconnect each subscribed chat's gap is
// read back from its stream and delivered in order, at most once.
//
// Deliveries of one shard (pub/sub connection) come from one goroutine, so a
// chat's deliveries are ordered; different shards call the handler
// concurrently.
type Redis struct {
	client  redis.UniversalClient
	prefix  string
	size    int
	ttl     time.Duration
	nshards int
	log     zerolog.Logger

	// Sharded pub/sub (Redis Cluster); tags is nil otherwise.
	sharded bool
	tags    []string // partition hash tags, see slotTags
	probe   time.Duration
	nonce   string // names this broker's probe channels

	mu      sync.Mutex // guards the following fields
	started bool
	closed  bool
	handler Handler
	shards  []*shard // sharded: nil until the partition's first subscription

	closeCh chan struct{} // closed by Close
	wg      sync.WaitGroup
}

var _ Broker = (*Redis)(nil)

// NewRedis returns a Redis broker using client, which the caller owns (Close
// does not close it). It does no I/O.
func NewRedis(client redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	prefix, err := redisprefix.Resolve("bus", client, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	if strings.ContainsRune(prefix, '\n') { // the bus's envelope is line-based
		return nil, fmt.Errorf("bus: prefix %q must not contain a newline", prefix)
	}
	cfg.Prefix = prefix
	switch {
	case cfg.HistorySize < 0:
		return nil, errors.New("bus: history size must not be negative")
	case cfg.HistorySize == 0:
		cfg.HistorySize = DefaultHistorySize
	}
	switch {
	case cfg.HistoryTTL < 0:
		return nil, errors.New("bus: history ttl must not be negative")
	case cfg.HistoryTTL == 0:
		cfg.HistoryTTL = DefaultHistoryTTL
	case cfg.HistoryTTL < time.Millisecond:
		return nil, errors.New("bus: history ttl must be at least 1ms")
	}
	switch {
	case cfg.PubSubShards < 0:
		return nil, errors.New("bus: pub/sub shards must not be negative")
	case cfg.PubSubShards == 0:
		cfg.PubSubShards = 4
	}
	switch {
	case cfg.Partitions < 0 || cfg.Partitions > slots:
		return nil, fmt.Errorf("bus: partitions must be between 1 and %d", slots)
	case cfg.Partitions == 0:
		cfg.Partitions = DefaultPartitions
	}
	switch {
	case cfg.ProbeInterval < 0:
		return nil, errors.New("bus: probe interval must not be negative")
	case cfg.ProbeInterval == 0:
		cfg.ProbeInterval = time.Second
	}
	r := &Redis{
		client:  client,
		prefix:  cfg.Prefix,
		size:    cfg.HistorySize,
		ttl:     cfg.HistoryTTL,
		nshards: cfg.PubSubShards,
		log:     cfg.Logger.With().Str("component", "bus").Logger(),
		closeCh: make(chan struct{}),
	}
	if _, ok := client.(*redis.ClusterClient); ok {
		r.sharded = true
		r.tags = slotTags(cfg.Partitions)
		r.nshards = cfg.Partitions
		r.probe = cfg.ProbeInterval
		r.nonce = newNonce()
	}
	return r, nil
}

// chatTag is "<prefix>:{chat:<id>}" ("<prefix>:{<tag>}:chat:<id>" when
// sharded), the chat channel and the start of its keys.
func (r *Redis) chatTag(chatID string) string {
	if r.sharded {
		return r.partitionTag(KindChat, chatID) + "chat:" + chatID
	}
	return r.prefix + ":{chat:" + chatID + "}"
}

func (r *Redis) streamKey(chatID string) string { return r.chatTag(chatID) + ":h" }

// channelName is ch's Redis pub/sub channel.
func (r *Redis) channelName(ch Channel) string {
	if r.sharded {
		switch ch.Kind {
		case KindChat:
			return r.chatTag(ch.ID)
		case KindUser:
			return r.partitionTag(ch.Kind, ch.ID) + "user:" + ch.ID
		case KindProfile:
			return r.partitionTag(ch.Kind, ch.ID) + "profile:" + ch.ID
		}
		return ""
	}
	switch ch.Kind {
	case KindChat:
		return r.chatTag(ch.ID)
	case KindUser:
		return r.prefix + ":{user:" + ch.ID + "}"
	case KindProfile:
		return r.prefix + ":{profile:" + ch.ID + "}"
	}
	return ""
}

// ChannelName is ch's Redis pub/sub channel (for operators' PUBSUB queries
// and tests); "" for an unknown kind.
func (r *Redis) ChannelName(ch Channel) string { return r.channelName(ch) }

// unavailable wraps a Redis failure: one Redis could not serve (no
// connection, a timeout, a server not ready) matches both ErrUnavailable and
// the cause; a reply that rejects the call (WRONGTYPE, a script error) does
// not match ErrUnavailable, so clients are not told to retry what will keep
// failing.
func unavailable(op string, err error) error {
	return rediserr.Wrap("bus", op, ErrUnavailable, err)
}

func (r *Redis) isClosed() bool {
	select {
	case <-r.closeCh:
		return true
	default:
		return false
	}
}

// Start creates the pub/sub connections (lazily dialled) and their goroutines.
func (r *Redis) Start(h Handler) error {
	if h == nil {
		return errors.New("bus: nil handler")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.started {
		return errors.New("bus: already started")
	}
	r.started = true
	r.handler = h
	r.shards = make([]*shard, r.nshards)
	if r.sharded {
		return nil // a partition's shard starts with its first subscription
	}
	for i := range r.shards {
		sh := r.newShard(i)
		sh.ps = r.client.Subscribe(context.Background()) // no channels: no I/O yet
		r.shards[i] = sh
		r.wg.Add(2)
		go sh.read(sh.ps.ChannelWithSubscriptions(redis.WithChannelSize(1024)))
		go sh.repairLoop()
	}
	return nil
}

// newShard returns shard i without a connection or goroutines.
func (r *Redis) newShard(i int) *shard {
	return &shard{
		r:          r,
		h:          r.handler,
		log:        r.log.With().Int("shard", i).Logger(),
		chans:      make(map[string]*subState),
		waiters:    make(map[string]chan struct{}),
		repairQ:    make(map[*subState]struct{}),
		repairWake: make(chan struct{}, 1),
		repaired:   make(chan repairResult),
		swap:       make(chan (<-chan any)),
		renewWake:  make(chan struct{}, 1),
	}
}

// shardFor returns the shard of a channel: by hash of its name on fixed
// connections, or its partition's (started on first use) when sharded.
func (r *Redis) shardFor(ch Channel, name string) (*shard, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	if !r.started {
		return nil, errNotStarted
	}
	if r.sharded {
		i := r.partition(ch.Kind, ch.ID)
		sh := r.shards[i]
		if sh == nil {
			sh = r.newShard(i)
			sh.sharded = true
			sh.probeName = r.tagOf(i) + "probe:" + r.nonce
			r.shards[i] = sh
			r.wg.Add(3)
			go sh.read(nil)
			go sh.repairLoop()
			go sh.watch()
		}
		return sh, nil
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return r.shards[h.Sum32()%uint32(len(r.shards))], nil
}

// Subscribe subscribes to ch's Redis channel and waits for Redis's
// confirmation. For a chat it first reads the stream's last id: deliveries
// (and repairs) start after it.
func (r *Redis) Subscribe(ctx context.Context, ch Channel) error {
	name := r.channelName(ch)
	if name == "" {
		return fmt.Errorf("bus: subscribe: unknown channel kind %d", ch.Kind)
	}
	sh, err := r.shardFor(ch, name)
	if err != nil {
		return err
	}
	return sh.subscribe(ctx, ch, name)
}

// Unsubscribe drops the interest in ch. It succeeds even when Redis is
// unreachable: the channel is forgotten at once and not resubscribed when the
// connection comes back.
func (r *Redis) Unsubscribe(ctx context.Context, ch Channel) error {
	name := r.channelName(ch)
	if name == "" {
		return nil
	}
	sh, err := r.shardFor(ch, name)
	if err != nil {
		return err
	}
	sh.unsubscribe(ctx, name)
	return nil
}

// Publish sends an ephemeral event (one PUBLISH).
func (r *Redis) Publish(ctx context.Context, ch Channel, event string, data json.RawMessage) error {
	if r.isClosed() {
		return ErrClosed
	}
	name := r.channelName(ch)
	if name == "" {
		return fmt.Errorf("bus: publish: unknown channel kind %d", ch.Kind)
	}
	if strings.IndexByte(event, '\n') >= 0 {
		return errEventName
	}
	payload := ephemeral(event, data)
	publish := r.client.Publish
	if r.sharded {
		publish = r.client.SPublish
	}
	if err := publish(ctx, name, payload).Err(); err != nil {
		return unavailable("publish", err)
	}
	return nil
}

// ephemeral is the envelope of an event without ids: "\n\n<event>\n<data>".
func ephemeral(event string, data json.RawMessage) []byte {
	payload := make([]byte, 0, 3+len(event)+len(data))
	payload = append(payload, '\n', '\n')
	payload = append(payload, event...)
	payload = append(payload, '\n')
	return append(payload, data...)
}

var modes = [...]string{OpSend: "s", OpEdit: "e", OpDelete: "d", OpReactAdd: "a", OpReactRemove: "r"}

// Append runs the append script: checks, stream XADD (exact MAXLEN), TTLs,
// message and reaction updates and PUBLISH, in one round trip.
func (r *Redis) Append(ctx context.Context, chatID string, op Op) (Result, error) {
	res, _, err := r.appendOp(ctx, chatID, op, nil)
	return res, err
}

// appendOp is Append, with lim (when not nil) checked and counted first in
// the same script.
func (r *Redis) appendOp(ctx context.Context, chatID string, op Op, lim *WindowLimit) (Result, time.Duration, error) {
	if r.isClosed() {
		return Result{}, 0, ErrClosed
	}
	if op.Kind < OpSend || op.Kind > OpReactRemove {
		return Result{}, 0, fmt.Errorf("bus: append: unknown op kind %d", op.Kind)
	}
	if strings.IndexByte(op.Event, '\n') >= 0 {
		return Result{}, 0, errEventName
	}
	tag := r.chatTag(chatID)
	// KEYS: stream, meta, (reactions,) (the limit,) the channel (tag) last.
	keys := make([]string, 0, 5)
	data, sep := []byte(op.Data), ""
	if op.Kind == OpSend {
		keys = append(keys, tag+":h", tag+":m:")
		if len(data) == 0 {
			data = []byte("{}")
		}
		body, empty, ok := splitObject(data)
		if !ok {
			return Result{}, 0, fmt.Errorf("bus: append: %w", errNotObject)
		}
		data = body
		if !empty {
			sep = ","
		}
	} else {
		if !ValidID(op.MessageID) {
			return Result{}, 0, fmt.Errorf("bus: append: %w", ErrNotFound)
		}
		keys = append(keys, tag+":h", tag+":m:"+op.MessageID, tag+":r:"+op.MessageID)
	}
	args := make([]any, 0, 15)
	args = append(args, modes[op.Kind], r.size, r.ttl.Milliseconds(), r.publishCmd(), op.Event, data, sep,
		op.UserID, op.MessageID, op.Emoji)
	if lim != nil {
		keys = append(keys, lim.Key)
		args = append(args, lim.Now, lim.Cutoff, lim.Window, lim.N, lim.Member)
	}
	keys = append(keys, tag)
	res, err := appendScript.Run(ctx, r.client, keys, args...).StringSlice()
	if err != nil {
		return Result{}, 0, unavailable("append", err)
	}
	if len(res) == 0 {
		return Result{}, 0, errors.New("bus: append: empty script reply")
	}
	switch res[0] {
	case "ok":
		if len(res) < 2 {
			return Result{}, 0, errors.New("bus: append: short script reply")
		}
		msgID := op.MessageID
		if op.Kind == OpSend {
			msgID = res[1]
		}
		return Result{EventID: res[1], MessageID: msgID, Changed: true}, 0, nil
	case "same":
		return Result{MessageID: op.MessageID}, 0, nil
	case "notfound":
		return Result{}, 0, fmt.Errorf("bus: append: %w", ErrNotFound)
	case "forbidden":
		return Result{}, 0, fmt.Errorf("bus: append: %w", ErrForbidden)
	case "limited":
		if lim != nil && len(res) == 2 {
			us, _ := strconv.ParseInt(res[1], 10, 64)
			return Result{}, max(time.Duration(us)*time.Microsecond, time.Microsecond), fmt.Errorf("bus: append: %w", ErrLimited)
		}
	}
	return Result{}, 0, fmt.Errorf("bus: append: unexpected script reply %q", res)
}

// Since reads the stream in one round trip: for a well-formed id a pipeline of
// XRANGE - + COUNT 1 (the oldest retained id, to decide recovered) and
// XRANGE (id + COUNT limit; for a malformed one XREVRANGE + - COUNT limit.
// Semantics as [Memory.Since].
func (r *Redis) Since(ctx context.Context, chatID, afterEventID string, limit int) ([]Event, bool, error) {
	if r.isClosed() {
		return nil, false, ErrClosed
	}
	if limit <= 0 {
		limit = r.size
	}
	key := r.streamKey(chatID)
	if !ValidID(afterEventID) {
		msgs, err := r.client.XRevRangeN(ctx, key, "+", "-", int64(limit)).Result()
		if err != nil {
			return nil, false, unavailable("since", err)
		}
		events := toEvents(msgs)
		for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
			events[i], events[j] = events[j], events[i]
		}
		return events, false, nil
	}
	var first, rest *redis.XMessageSliceCmd
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		first = p.XRangeN(ctx, key, "-", "+", 1)
		rest = p.XRangeN(ctx, key, "("+afterEventID, "+", int64(limit))
		return nil
	})
	if err != nil {
		return nil, false, unavailable("since", err)
	}
	head := first.Val()
	if len(head) == 0 {
		return nil, false, nil
	}
	return toEvents(rest.Val()), CompareIDs(afterEventID, head[0].ID) >= 0, nil
}

func toEvents(msgs []redis.XMessage) []Event {
	if len(msgs) == 0 {
		return nil
	}
	events := make([]Event, len(msgs))
	for i, m := range msgs {
		events[i] = streamEvent(m)
	}
	return events
}

func streamEvent(m redis.XMessage) Event {
	ev, _ := m.Values["e"].(string)
	d, _ := m.Values["d"].(string)
	e := Event{EventID: m.ID, Event: ev}
	if d != "" {
		e.Data = json.RawMessage(d)
	}
	return e
}

// Close stops the pub/sub goroutines and waits for them; after it returns the
// handler is not called. It does not close the Redis client. Idempotent; must
// not be called from the handler.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closeCh)
	shards := r.shards
	r.mu.Unlock()
	for _, sh := range shards {
		if sh == nil {
			continue
		}
		sh.subMu.Lock() // the watcher may be replacing the connection
		if sh.ps != nil {
			_ = sh.ps.Close() // closes the reader's channel once go-redis's reader stops
		}
		sh.subMu.Unlock()
	}
	r.wg.Wait()
	return nil
}

// WindowLimit is a rolling-window rate limit that [Redis.AppendLimited]
// and [Redis.PublishLimited] check and count in their script: the arguments of
// limits/lua/window.lua (limits.Redis.Check builds them), on the limiter's
// own key, so that it shares its budget with the limiter's other checks.
type WindowLimit = limits.WindowCheck

// ErrLimited: [Redis.AppendLimited] or [Redis.PublishLimited] refused the
// event, its limit's window is full.
var ErrLimited = errors.New("bus: rate limited")

// errSharded: a limit key is in another slot than the chat on Redis Cluster.
var errSharded = errors.New("bus: append with a limit: not on Redis Cluster (the limit's key is in another slot)")

// AppendLimited is Append whose rate limit is checked and counted in the
// same script, first: one round trip and one script per operation instead
// of two. When lim's window is full nothing is done and it returns
// ErrLimited with how long until one more event fits; otherwise the event is
// counted whatever the operation's outcome (ErrNotFound, an unchanged
// reaction), as a separate check before it would. Not available on a Redis
// Cluster client, where the limit's key and the chat's keys are in different
// slots (errSharded): there the caller checks the limit first.
func (r *Redis) AppendLimited(ctx context.Context, chatID string, op Op, lim WindowLimit) (Result, time.Duration, error) {
	if r.sharded {
		return Result{}, 0, errSharded
	}
	return r.appendOp(ctx, chatID, op, &lim)
}

// PublishLimited is Publish of an ephemeral event (typing) whose rate limit
// is checked and counted in the same script: one round trip instead of two.
// When lim's window is full nothing is published and it returns ErrLimited
// with how long until one more event fits. Not available on a Redis Cluster
// client (errSharded), where the limit's key and the channel are in
// different slots: there the caller checks the limit first.
func (r *Redis) PublishLimited(ctx context.Context, ch Channel, event string, data json.RawMessage, lim WindowLimit) (time.Duration, error) {
	if r.isClosed() {
		return 0, ErrClosed
	}
	if r.sharded {
		return 0, errSharded
	}
	name := r.channelName(ch)
	if name == "" {
		return 0, fmt.Errorf("bus: publish: unknown channel kind %d", ch.Kind)
	}
	if strings.IndexByte(event, '\n') >= 0 {
		return 0, errEventName
	}
	res, err := publishScript.Run(ctx, r.client, []string{lim.Key, name},
		lim.Now, lim.Cutoff, lim.Window, lim.N, lim.Member, r.publishCmd(), ephemeral(event, data)).StringSlice()
	if err != nil {
		return 0, unavailable("publish", err)
	}
	switch {
	case len(res) == 1 && res[0] == "ok":
		return 0, nil
	case len(res) == 2 && res[0] == "limited":
		us, _ := strconv.ParseInt(res[1], 10, 64)
		return max(time.Duration(us)*time.Microsecond, time.Microsecond), fmt.Errorf("bus: publish: %w", ErrLimited)
	}
	return 0, fmt.Errorf("bus: publish limited: unexpected script reply %q", res)
}
