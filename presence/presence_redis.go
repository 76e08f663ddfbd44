package presence

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisscript"
)

// Interface guard.
var _ Presence = (*Redis)(nil)

const (
	// DefaultPrefix is the key prefix used when RedisConfig.Prefix is empty.
	DefaultPrefix = "rt"
	// DefaultEntryTTL is the entry TTL used when RedisConfig.EntryTTL is 0.
	DefaultEntryTTL = 30 * time.Second

	closeTimeout = 5 * time.Second
	numStripes   = 64
)

var (
	//go:embed lua/acquire.lua
	acquireLua    string
	acquireScript = redisscript.New(acquireLua)

	//go:embed lua/refresh.lua
	refreshLua    string
	refreshScript = redisscript.New(refreshLua)

	//go:embed lua/node_refresh.lua
	nodeRefreshLua    string
	nodeRefreshScript = redisscript.New(nodeRefreshLua)

	//go:embed lua/live.lua
	liveLua    string
	liveScript = redisscript.New(liveLua)

	//go:embed lua/locate.lua
	locateLua    string
	locateScript = redisscript.New(locateLua)

	//go:embed lua/stats.lua
	statsLua    string
	statsScript = redisscript.New(statsLua)
)

// RedisConfig configures [NewRedis].
type RedisConfig struct {
	// Prefix starts every key, so clusters can share a Redis. Default "rt".
	// It must not contain '{' or '}' (those would break the hash tags).
	Prefix string
	// NodeID names this node; required, unique among the live nodes (a pod
	// name plus a random suffix per process is a good choice), without '|',
	// '{' or '}'.
	NodeID string
	// EntryTTL is how long this node's entries and liveness last without a
	// Refresh: a crashed node's connections stop counting against caps
	// within it. Default 30s, at least 10ms. Call Refresh at least every
	// EntryTTL/3 (see [KeepAlive]).
	EntryTTL time.Duration
}

// Redis is the cluster [Presence]. Times are the Redis server's (TIME inside
// the scripts), so node clocks do not matter. Key layout (prefix "rt"):
//
//	rt:{user:<id>}:conns       sorted set, one per user: member "<node>|<conn>",
//	                           score = expiry (ms); the cap is checked here
//	rt:{nodes}:live            sorted set of nodes, score = liveness expiry (ms)
//	rt:{nodes}:<node>:alive    liveness key, PX EntryTTL
//	rt:{nodes}:<node>:conns    set of this node's entries (for Stats)
//	rt:{nodes}:<node>:users    set of users with an entry on this node
//	rt:{nodes}:<node>:chats    set of chats with local members (SetChats)
//	rt:{nodes}:scratch         scratch key of the Stats script
//
// Per-user keys hold everything the cap needs, so Acquire's script touches
// one key; the node-level keys share the {nodes} hash tag so Stats can take
// unions across nodes in one script on Redis Cluster too.
//
// Round trips: Acquire and Release 1 (one pipeline: the per-user script or
// ZREM, plus the node's bookkeeping); SetChats 1; Refresh 1 (one pipeline
// with one script per user with local entries, plus one more after this node
// was forgotten: see Refresh); Stats 2; Close 1. A script missing from the
// server's cache (first use, SCRIPT FLUSH, restart) costs one extra round
// trip once.
//
// A refused Acquire has already added the entry to the node's bookkeeping
// sets in the same pipeline; the correction rides on the next call for a
// user of the same stripe, or on the next Refresh or Stats of this node.
// Until then another node's Stats may count it.
type Redis struct {
	client redis.UniversalClient
	prefix string
	nodeID string
	ttl    time.Duration
	ttlMS  int64
	// This node's keys.
	liveKey, aliveKey, connsKey, usersKey, chatsKey, scratchKey string

	closed      atomic.Bool
	registered  atomic.Bool // a Refresh has succeeded
	needRebuild atomic.Bool // the node's Redis state must be rewritten from local state

	// Lock order: refreshMu, chatsMu, stripes in index order, mu.
	refreshMu sync.Mutex // serialises Refresh and Close; held across I/O
	chatsMu   sync.Mutex // serialises SetChats, rebuild and Close; held across I/O
	stripes   [numStripes]stripe

	mu    sync.Mutex // guards the following fields; never held across I/O
	local map[string]map[string]struct{}
	chats []string
}

// stripe orders the calls for the users hashed to it.
type stripe struct {
	// mu is held across the round trip of each Acquire and Release for a user
	// of this stripe, so the node's bookkeeping of a user changes in order.
	mu      sync.Mutex
	pending []entry // guarded by mu: bookkeeping to undo (refused or failed calls)
}

type entry struct{ user, conn string }

// NewRedis returns a presence for node cfg.NodeID on client. It does no I/O;
// the first call registers the node.
func NewRedis(client redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	if client == nil {
		return nil, errors.New("presence: nil redis client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("presence: prefix %q must not contain '{' or '}'", cfg.Prefix)
	}
	if cfg.NodeID == "" {
		return nil, errors.New("presence: node ID required")
	}
	if strings.ContainsAny(cfg.NodeID, "|{}") {
		return nil, fmt.Errorf("presence: node ID %q must not contain '|', '{' or '}'", cfg.NodeID)
	}
	if cfg.EntryTTL == 0 {
		cfg.EntryTTL = DefaultEntryTTL
	}
	if cfg.EntryTTL < 10*time.Millisecond {
		return nil, fmt.Errorf("presence: entry TTL %v must be at least 10ms", cfg.EntryTTL)
	}
	r := &Redis{
		client: client,
		prefix: cfg.Prefix,
		nodeID: cfg.NodeID,
		ttl:    cfg.EntryTTL.Truncate(time.Millisecond),
		ttlMS:  cfg.EntryTTL.Milliseconds(),
		local:  make(map[string]map[string]struct{}),
	}
	r.liveKey = r.prefix + ":{nodes}:live"
	r.scratchKey = r.prefix + ":{nodes}:scratch"
	r.aliveKey = r.nodeKey(r.nodeID, "alive")
	r.connsKey = r.nodeKey(r.nodeID, "conns")
	r.usersKey = r.nodeKey(r.nodeID, "users")
	r.chatsKey = r.nodeKey(r.nodeID, "chats")
	// A previous process with this node ID may have left bookkeeping behind.
	r.needRebuild.Store(true)
	return r, nil
}

func (r *Redis) userKey(userID string) string { return r.prefix + ":{user:" + userID + "}:conns" }

func (r *Redis) nodeKey(nodeID, what string) string {
	return r.prefix + ":{nodes}:" + nodeID + ":" + what
}

// member is the entry's member in its user's sorted set.
func (r *Redis) member(connID string) string { return r.nodeID + "|" + connID }

// encodeEntry is the entry's member in the node's conns set (length-prefixed:
// IDs may contain any byte).
func encodeEntry(userID, connID string) string {
	return strconv.Itoa(len(userID)) + ":" + userID + connID
}

func (r *Redis) stripeOf(userID string) *stripe {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(userID); i++ {
		h ^= uint32(userID[i])
		h *= 16777619
	}
	return &r.stripes[h%numStripes]
}

// Acquire implements [Presence]: one round trip.
func (r *Redis) Acquire(ctx context.Context, userID, connID string, max int) (bool, error) {
	if r.closed.Load() {
		return false, ErrClosed
	}
	if max <= 0 {
		return false, nil
	}
	if err := r.register(ctx); err != nil {
		return false, err
	}
	st := r.stripeOf(userID)
	st.mu.Lock()
	defer st.mu.Unlock()
	if r.closed.Load() {
		return false, ErrClosed
	}
	r.mu.Lock()
	_, held := r.local[userID][connID]
	r.mu.Unlock()

	b := newBatch(r.client)
	r.queueCorrections(ctx, b, st.pending)
	acq := b.script(ctx, acquireScript, []string{r.userKey(userID)}, r.member(connID), max, r.ttlMS)
	b.pipe.SAdd(ctx, r.connsKey, encodeEntry(userID, connID))
	b.pipe.SAdd(ctx, r.usersKey, userID)
	b.pipe.PExpire(ctx, r.connsKey, r.ttl)
	b.pipe.PExpire(ctx, r.usersKey, r.ttl)
	err := b.exec(ctx, r.client)
	if err == nil {
		st.pending = st.pending[:0]
	}
	ok := err == nil && acq.int() == 1
	switch {
	case ok:
		r.mu.Lock()
		set := r.local[userID]
		if set == nil {
			set = make(map[string]struct{})
			r.local[userID] = set
		}
		set[connID] = struct{}{}
		r.mu.Unlock()
	case !held:
		st.pending = append(st.pending, entry{userID, connID})
	}
	if err != nil {
		return false, wrapErr("acquire", err)
	}
	return ok, nil
}

// Release implements [Presence]: one round trip. The entry is forgotten
// locally even if Redis cannot be reached (it then expires within EntryTTL).
func (r *Redis) Release(ctx context.Context, userID, connID string) error {
	if r.closed.Load() {
		return nil
	}
	st := r.stripeOf(userID)
	st.mu.Lock()
	defer st.mu.Unlock()
	if r.closed.Load() {
		return nil
	}
	b := newBatch(r.client)
	r.queueCorrections(ctx, b, st.pending)
	r.mu.Lock()
	if set := r.local[userID]; set != nil {
		delete(set, connID)
		if len(set) == 0 {
			delete(r.local, userID)
		}
	}
	userGone := len(r.local[userID]) == 0
	r.mu.Unlock()
	b.pipe.ZRem(ctx, r.userKey(userID), r.member(connID))
	b.pipe.SRem(ctx, r.connsKey, encodeEntry(userID, connID))
	if userGone {
		b.pipe.SRem(ctx, r.usersKey, userID)
	}
	if err := b.exec(ctx, r.client); err != nil {
		st.pending = append(st.pending, entry{userID, connID})
		return wrapErr("release", err)
	}
	st.pending = st.pending[:0]
	return nil
}

// SetChats implements [Presence]: one round trip (MULTI/EXEC).
func (r *Redis) SetChats(ctx context.Context, chatIDs []string) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := r.register(ctx); err != nil {
		return err
	}
	r.chatsMu.Lock()
	defer r.chatsMu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	seen := make(map[string]struct{}, len(chatIDs))
	chats := make([]string, 0, len(chatIDs))
	for _, c := range chatIDs {
		if _, ok := seen[c]; !ok {
			seen[c] = struct{}{}
			chats = append(chats, c)
		}
	}
	r.mu.Lock()
	r.chats = chats
	r.mu.Unlock()
	p := r.client.TxPipeline()
	p.Del(ctx, r.chatsKey)
	if len(chats) > 0 {
		p.SAdd(ctx, r.chatsKey, chats)
		p.PExpire(ctx, r.chatsKey, r.ttl)
	}
	if _, err := p.Exec(ctx); err != nil {
		// The set on the server is unknown now: rewrite it on the next Refresh.
		r.needRebuild.Store(true)
		return wrapErr("set chats", err)
	}
	return nil
}

// Refresh implements [Presence]: it renews this node's liveness and pushes
// the expiry of all its entries to now + EntryTTL, in one pipeline (one
// script per user, so each stays in its user's hash slot). If this node had
// been forgotten (a stall longer than EntryTTL, or Redis lost its data) it
// then rewrites its state, restoring its entries without checking caps: a
// user may be over the cap until a connection closes.
func (r *Redis) Refresh(ctx context.Context) error {
	return r.refresh(ctx, false)
}

// register refreshes once before the first call that needs the node known.
func (r *Redis) register(ctx context.Context) error {
	if r.registered.Load() {
		return nil
	}
	return r.refresh(ctx, true)
}

func (r *Redis) refresh(ctx context.Context, onlyFirst bool) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	if r.closed.Load() {
		return ErrClosed
	}
	if onlyFirst && r.registered.Load() {
		return nil
	}
	locked := r.lockPending()
	b := newBatch(r.client)
	for _, st := range locked {
		r.queueCorrections(ctx, b, st.pending)
	}
	node := b.script(ctx, nodeRefreshScript,
		[]string{r.liveKey, r.aliveKey, r.connsKey, r.usersKey, r.chatsKey}, r.nodeID, r.ttlMS)
	for user, members := range r.snapshot() {
		b.script(ctx, refreshScript, []string{r.userKey(user)}, append([]any{r.ttlMS, "XX"}, members...)...)
	}
	err := b.exec(ctx, r.client)
	for _, st := range locked {
		if err == nil {
			st.pending = st.pending[:0]
		}
		st.mu.Unlock()
	}
	if err != nil {
		return wrapErr("refresh", err)
	}
	if node.int() == 0 {
		r.needRebuild.Store(true)
	}
	if r.needRebuild.Load() {
		if err := r.rebuild(ctx); err != nil {
			return err
		}
	}
	r.registered.Store(true)
	return nil
}

// rebuild rewrites this node's bookkeeping sets from local state and restores
// its entries. It runs with every stripe locked, so no Acquire or Release is
// in flight. refreshMu must be held.
func (r *Redis) rebuild(ctx context.Context) error {
	r.chatsMu.Lock()
	defer r.chatsMu.Unlock()
	for i := range r.stripes {
		r.stripes[i].mu.Lock()
		defer r.stripes[i].mu.Unlock()
	}
	b := newBatch(r.client)
	for i := range r.stripes {
		r.queueCorrections(ctx, b, r.stripes[i].pending)
	}
	snap := r.snapshot()
	r.mu.Lock()
	chats := make([]any, len(r.chats))
	for i, c := range r.chats {
		chats[i] = c
	}
	var conns, users []any
	for user, set := range r.local {
		users = append(users, user)
		for conn := range set {
			conns = append(conns, encodeEntry(user, conn))
		}
	}
	r.mu.Unlock()
	b.pipe.Del(ctx, r.connsKey, r.usersKey, r.chatsKey)
	for key, members := range map[string][]any{r.connsKey: conns, r.usersKey: users, r.chatsKey: chats} {
		if len(members) > 0 {
			b.pipe.SAdd(ctx, key, members...)
			b.pipe.PExpire(ctx, key, r.ttl)
		}
	}
	for user, members := range snap {
		b.script(ctx, refreshScript, []string{r.userKey(user)}, append([]any{r.ttlMS, "ADD"}, members...)...)
	}
	if err := b.exec(ctx, r.client); err != nil {
		return wrapErr("refresh", err)
	}
	for i := range r.stripes {
		r.stripes[i].pending = nil
	}
	r.needRebuild.Store(false)
	return nil
}

// Stats implements [Presence]: two round trips (the live nodes, then one
// script over their sets). It costs Redis time linear in the number of
// users and chats: call it for metrics and admin, not per event.
func (r *Redis) Stats(ctx context.Context) (Stats, error) {
	if r.closed.Load() {
		return Stats{}, ErrClosed
	}
	if err := r.register(ctx); err != nil {
		return Stats{}, err
	}
	locked := r.lockPending()
	b := newBatch(r.client)
	for _, st := range locked {
		r.queueCorrections(ctx, b, st.pending)
	}
	live := b.script(ctx, liveScript, []string{r.liveKey})
	err := b.exec(ctx, r.client)
	for _, st := range locked {
		if err == nil {
			st.pending = st.pending[:0]
		}
		st.mu.Unlock()
	}
	if err != nil {
		return Stats{}, wrapErr("stats", err)
	}
	nodes, err := live.cmd.StringSlice()
	if err != nil {
		return Stats{}, wrapErr("stats", err)
	}
	if len(nodes) == 0 {
		return Stats{}, nil
	}
	keys := make([]string, 0, 3*len(nodes)+1)
	for _, what := range []string{"conns", "users", "chats"} {
		for _, n := range nodes {
			keys = append(keys, r.nodeKey(n, what))
		}
	}
	keys = append(keys, r.scratchKey)
	v, err := statsScript.Run(ctx, r.client, keys, len(nodes)).Int64Slice()
	if err != nil {
		return Stats{}, wrapErr("stats", err)
	}
	if len(v) != 3 {
		return Stats{}, fmt.Errorf("presence: stats: unexpected reply %v", v)
	}
	return Stats{Nodes: len(nodes), Connections: int(v[0]), Users: int(v[1]), Chats: int(v[2])}, nil
}

// Locate implements [Presence]: one pipeline of one script per user (the
// users' keys may live on different Redis Cluster nodes). Expired entries
// of a crashed node are left out.
func (r *Redis) Locate(ctx context.Context, userIDs []string) (map[string][]Entry, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	out := make(map[string][]Entry)
	if len(userIDs) == 0 {
		return out, nil
	}
	b := newBatch(r.client)
	cmds := make([]*scriptCmd, len(userIDs))
	for i, u := range userIDs {
		cmds[i] = b.script(ctx, locateScript, []string{r.userKey(u)}, MaxLocate)
	}
	if err := b.exec(ctx, r.client); err != nil {
		return nil, wrapErr("locate", err)
	}
	for i, u := range userIDs {
		members, err := cmds[i].cmd.StringSlice()
		if err != nil {
			return nil, wrapErr("locate", err)
		}
		for _, m := range members {
			node, conn, ok := strings.Cut(m, "|")
			if !ok {
				continue
			}
			out[u] = append(out[u], Entry{Node: node, Conn: conn})
		}
	}
	return out, nil
}

// Close implements [Presence]: it removes this node's entries, bookkeeping
// and liveness in one round trip (bounded by 5s), so its users' slots free
// at once.
func (r *Redis) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	r.chatsMu.Lock()
	defer r.chatsMu.Unlock()
	for i := range r.stripes {
		r.stripes[i].mu.Lock()
		defer r.stripes[i].mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	b := newBatch(r.client)
	for i := range r.stripes {
		r.queueCorrections(ctx, b, r.stripes[i].pending)
		r.stripes[i].pending = nil
	}
	for user, members := range r.snapshot() {
		b.pipe.ZRem(ctx, r.userKey(user), members...)
	}
	b.pipe.Del(ctx, r.aliveKey, r.connsKey, r.usersKey, r.chatsKey)
	b.pipe.ZRem(ctx, r.liveKey, r.nodeID)
	err := b.exec(ctx, r.client)
	r.mu.Lock()
	r.local = make(map[string]map[string]struct{})
	r.chats = nil
	r.mu.Unlock()
	if err != nil {
		return wrapErr("close", err)
	}
	return nil
}

// snapshot returns this node's entries: user → members of the user's set.
func (r *Redis) snapshot() map[string][]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]any, len(r.local))
	for user, set := range r.local {
		members := make([]any, 0, len(set))
		for conn := range set {
			members = append(members, r.member(conn))
		}
		out[user] = members
	}
	return out
}

// lockPending locks, and returns, the stripes that have corrections waiting
// and are not busy (a busy stripe's own call drains them).
func (r *Redis) lockPending() []*stripe {
	var locked []*stripe
	for i := range r.stripes {
		st := &r.stripes[i]
		if !st.mu.TryLock() {
			continue
		}
		if len(st.pending) == 0 {
			st.mu.Unlock()
			continue
		}
		locked = append(locked, st)
	}
	return locked
}

// queueCorrections undoes the bookkeeping of entries this node does not
// hold: refused acquisitions (whose SADDs went in the same pipeline as the
// script) and calls that failed midway. The stripe of each entry must be
// locked.
func (r *Redis) queueCorrections(ctx context.Context, b *batch, pending []entry) {
	if len(pending) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range pending {
		if _, held := r.local[e.user][e.conn]; held {
			continue
		}
		b.pipe.ZRem(ctx, r.userKey(e.user), r.member(e.conn))
		b.pipe.SRem(ctx, r.connsKey, encodeEntry(e.user, e.conn))
		if len(r.local[e.user]) == 0 {
			b.pipe.SRem(ctx, r.usersKey, e.user)
		}
	}
}

// batch is one pipeline whose scripts run by EVALSHA; those the server does
// not have cached are sent again with EVAL in one more round trip. A script
// rejected with NOSCRIPT did not run, so nothing runs twice.
type batch struct {
	pipe    redis.Pipeliner
	scripts []*scriptCmd
}

type scriptCmd struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

func newBatch(c redis.UniversalClient) *batch { return &batch{pipe: c.Pipeline()} }

func (b *batch) script(ctx context.Context, s *redis.Script, keys []string, args ...any) *scriptCmd {
	sc := &scriptCmd{script: s, keys: keys, args: args, cmd: s.EvalSha(ctx, b.pipe, keys, args...)}
	b.scripts = append(b.scripts, sc)
	return sc
}

// int is the script's integer reply, 0 on error.
func (sc *scriptCmd) int() int64 {
	n, _ := sc.cmd.Int64()
	return n
}

// exec sends the pipeline and returns the first error of any command.
func (b *batch) exec(ctx context.Context, c redis.UniversalClient) error {
	if b.pipe.Len() == 0 {
		return nil
	}
	cmds, _ := b.pipe.Exec(ctx)
	var retry []*scriptCmd
	for _, sc := range b.scripts {
		if isNoScript(sc.cmd.Err()) {
			retry = append(retry, sc)
		}
	}
	if len(retry) > 0 {
		p := c.Pipeline()
		for _, sc := range retry {
			sc.cmd = sc.script.Eval(ctx, p, sc.keys, sc.args...)
		}
		_, _ = p.Exec(ctx)
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) && !isNoScript(err) {
			return err
		}
	}
	for _, sc := range retry {
		if err := sc.cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

func isNoScript(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") }

// wrapErr adds context to a Redis error; connection, timeout and "server not
// ready" errors also match [ErrUnavailable].
func wrapErr(op string, err error) error { return rediserr.Wrap("presence", op, ErrUnavailable, err) }
