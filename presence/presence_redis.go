package presence

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisprefix"
	"github.com/anchat/realtime/internal/redisscript"
)

// Interface guard.
var _ Presence = (*Redis)(nil)

const (
	// DefaultPrefix is the key prefix used when RedisConfig.Prefix is empty.
	DefaultPrefix = redisprefix.Default
	// DefaultEntryTTL is the entry TTL used when RedisConfig.EntryTTL is 0.
	DefaultEntryTTL = 30 * time.Second

	// DefaultStatsMaxAge is a StatsMaxAge for a cluster whose nodes all
	// report Stats every few seconds: one scan per 5 s, whatever the nodes.
	DefaultStatsMaxAge = 5 * time.Second

	closeTimeout = 5 * time.Second
)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	acquireScript     = redisscript.FromFS(luaFS, "lua/acquire.lua")
	bookScript        = redisscript.FromFS(luaFS, "lua/book.lua")
	refreshScript     = redisscript.FromFS(luaFS, "lua/refresh.lua")
	nodeRefreshScript = redisscript.FromFS(luaFS, "lua/node_refresh.lua")
	liveScript        = redisscript.FromFS(luaFS, "lua/live.lua")
	locateScript      = redisscript.FromFS(luaFS, "lua/locate.lua")
	statsScript       = redisscript.FromFS(luaFS, "lua/stats.lua")
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
	// StatsMaxAge, when positive, lets Stats answer with cluster-wide
	// figures up to this old: the first caller after they expire computes
	// them (time linear in users and chats, on the Redis shard of {nodes})
	// and stores them under rt:{nodes}:stats, every other caller on every
	// node reads them (O(1)), so the scan runs at most once per StatsMaxAge
	// however many nodes ask. Zero: every Stats scans (exact at the call).
	// [DefaultStatsMaxAge] suits the stats line and /api/stats. Whole
	// milliseconds.
	StatsMaxAge time.Duration
}

// Redis is the cluster [Presence]. Times are the Redis server's (TIME inside
// the scripts), so node clocks do not matter. Key layout (prefix "rt"):
//
//	rt:{user:<id>}:conns         sorted set, one per user: member "<node>|<conn>",
//	                             score = expiry (ms); the cap is checked here
//	rt:{nodes}:live              sorted set of nodes, score = liveness expiry (ms)
//	rt:{nodes}:<node>:alive      liveness key, PX EntryTTL
//	rt:{nodes}:<node>:conns      set of this node's entries (for Stats)
//	rt:{nodes}:<node>:usercounts hash: user → this node's entries of that user
//	rt:{nodes}:<node>:chats      set of chats with local members (SetChats)
//	rt:{nodes}:scratch           scratch key of the Stats script
//	rt:{nodes}:stats             Stats figures cached for StatsMaxAge (PX)
//
// Per-user keys hold everything the cap needs, so Acquire's script touches
// one key; the node-level keys share the {nodes} hash tag so Stats can take
// unions across nodes in one script on Redis Cluster too.
//
// Round trips: Acquire 1 (one pipeline: the per-user script and the node's
// bookkeeping), 2 when refused (the bookkeeping is taken back); Release 1
// (one pipeline: ZREM and the bookkeeping); SetChats 1; Refresh 1 (one
// pipeline with one script per user with local entries, plus one more after
// this node was forgotten: see Refresh); Stats 2 (1 when cached); Close 1. A script missing
// from the server's cache (SCRIPT FLUSH, restart) costs one extra round trip
// once. The bookkeeping script (lua/book.lua) is idempotent and commutes
// across entries, so calls need no ordering among themselves; only a rewrite
// of the node's state (rebuild, Close) excludes them, through bookMu. A
// refused Acquire's entry counts in Stats until its second round trip.
//
// Why one round trip on connect, measured: a storm of 19,000 connections on
// one node (docs/BENCHMARKS.md, "Presence: one round trip per connect"),
// with Acquire's bookkeeping in a second round trip, connected at 1,596/s
// against 2,178/s and was all back after a drop in 30.9 s against 17.9 s,
// with 32 % more node CPU and 46 % more Redis CPU (medians of 5 alternating
// runs). Folding it into the first round trip keeps that figure without the
// per-user lock stripes and deferred corrections it used to need (2,010/s
// and 19.9 s against 1,955/s and 19.9 s for the striped version).
type Redis struct {
	client redis.UniversalClient
	prefix string
	nodeID string
	ttl    time.Duration
	ttlMS  int64
	// statsMaxAgeMS is RedisConfig.StatsMaxAge in ms; 0: Stats does not cache.
	statsMaxAgeMS int64
	// This node's keys, and the cluster's Stats cache key.
	liveKey, aliveKey, connsKey, userCountsKey, chatsKey, scratchKey, statsKey string

	closed      atomic.Bool
	registered  atomic.Bool // a Refresh has succeeded
	needRebuild atomic.Bool // the node's Redis state must be rewritten from local state

	// Lock order: refreshMu, chatsMu, bookMu, mu.
	refreshMu sync.Mutex // serialises Refresh and Close; held across I/O
	chatsMu   sync.Mutex // serialises SetChats, rebuild and Close; held across I/O
	// bookMu is held shared across each Acquire and Release (I/O included)
	// and exclusively by rebuild and Close, so a rewrite of the node's state
	// never interleaves with a call's.
	bookMu sync.RWMutex

	mu    sync.Mutex // guards the following fields; never held across I/O
	local map[string]map[string]struct{}
	chats []string
}

// NewRedis returns a presence for node cfg.NodeID on client. It does no I/O;
// the first call registers the node.
func NewRedis(client redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	prefix, err := redisprefix.Resolve("presence", client, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	cfg.Prefix = prefix
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
	if cfg.StatsMaxAge < 0 || cfg.StatsMaxAge > 0 && cfg.StatsMaxAge < time.Millisecond {
		return nil, fmt.Errorf("presence: stats max age %v must be 0 or at least 1ms", cfg.StatsMaxAge)
	}
	r := &Redis{
		client: client,
		prefix: cfg.Prefix,
		nodeID: cfg.NodeID,
		ttl:    cfg.EntryTTL.Truncate(time.Millisecond),
		ttlMS:  cfg.EntryTTL.Milliseconds(),
		local:  make(map[string]map[string]struct{}),

		statsMaxAgeMS: cfg.StatsMaxAge.Milliseconds(),
	}
	r.liveKey = r.prefix + ":{nodes}:live"
	r.scratchKey = r.prefix + ":{nodes}:scratch"
	r.statsKey = r.prefix + ":{nodes}:stats"
	r.aliveKey = r.nodeKey(r.nodeID, "alive")
	r.connsKey = r.nodeKey(r.nodeID, "conns")
	r.userCountsKey = r.nodeKey(r.nodeID, "usercounts")
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

// Acquire implements [Presence]: one round trip (the cap script and the
// node's bookkeeping in one pipeline), two when refused (the bookkeeping is
// undone).
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
	r.bookMu.RLock()
	defer r.bookMu.RUnlock()
	if r.closed.Load() {
		return false, ErrClosed
	}
	b := newBatch(r.client)
	acq := b.script(ctx, acquireScript, []string{r.userKey(userID)}, r.member(connID), max, r.ttlMS)
	b.script(ctx, bookScript, r.bookKeys(), r.bookArgs("add", userID, connID)...)
	if err := b.exec(ctx, r.client); err != nil {
		// The bookkeeping on the server is unknown now: rewrite it on the
		// next Refresh.
		r.needRebuild.Store(true)
		if acq.cmd.Err() != nil {
			return false, wrapErr("acquire", err)
		}
	}
	ok := acq.int() == 1
	r.mu.Lock()
	_, held := r.local[userID][connID]
	if ok && !held {
		set := r.local[userID]
		if set == nil {
			set = make(map[string]struct{})
			r.local[userID] = set
		}
		set[connID] = struct{}{}
	}
	r.mu.Unlock()
	if !ok && !held {
		// Refused: take back the bookkeeping the pipeline added.
		err := bookScript.Run(ctx, r.client, r.bookKeys(), r.bookArgs("del", userID, connID)...).Err()
		if err != nil {
			r.needRebuild.Store(true)
		}
	}
	return ok, nil
}

// bookKeys and bookArgs are those of the bookkeeping script (lua/book.lua)
// for one entry; op is "add" or "del".
func (r *Redis) bookKeys() []string { return []string{r.connsKey, r.userCountsKey} }

func (r *Redis) bookArgs(op, userID, connID string) []any {
	return []any{op, encodeEntry(userID, connID), userID, r.ttlMS}
}

// Release implements [Presence]: one round trip. The entry is forgotten
// locally even if Redis cannot be reached (it then expires within EntryTTL).
func (r *Redis) Release(ctx context.Context, userID, connID string) error {
	if r.closed.Load() {
		return nil
	}
	r.bookMu.RLock()
	defer r.bookMu.RUnlock()
	if r.closed.Load() {
		return nil
	}
	r.mu.Lock()
	if set := r.local[userID]; set != nil {
		delete(set, connID)
		if len(set) == 0 {
			delete(r.local, userID)
		}
	}
	r.mu.Unlock()
	b := newBatch(r.client)
	b.pipe.ZRem(ctx, r.userKey(userID), r.member(connID))
	b.script(ctx, bookScript, r.bookKeys(), r.bookArgs("del", userID, connID)...)
	if err := b.exec(ctx, r.client); err != nil {
		// The bookkeeping on the server is unknown now: rewrite it on the
		// next Refresh.
		r.needRebuild.Store(true)
		return wrapErr("release", err)
	}
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
	b := newBatch(r.client)
	node := b.script(ctx, nodeRefreshScript,
		[]string{r.liveKey, r.aliveKey, r.connsKey, r.userCountsKey, r.chatsKey}, r.nodeID, r.ttlMS)
	for user, members := range r.snapshot() {
		b.script(ctx, refreshScript, []string{r.userKey(user)}, append([]any{r.ttlMS, "XX"}, members...)...)
	}
	if err := b.exec(ctx, r.client); err != nil {
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

// rebuild rewrites this node's bookkeeping from local state and restores its
// entries. It holds bookMu, so no Acquire or Release is in flight.
// refreshMu must be held.
func (r *Redis) rebuild(ctx context.Context) error {
	r.chatsMu.Lock()
	defer r.chatsMu.Unlock()
	r.bookMu.Lock()
	defer r.bookMu.Unlock()
	snap := r.snapshot()
	r.mu.Lock()
	chats := make([]any, len(r.chats))
	for i, c := range r.chats {
		chats[i] = c
	}
	var conns, userCounts []any
	for user, set := range r.local {
		userCounts = append(userCounts, user, len(set))
		for conn := range set {
			conns = append(conns, encodeEntry(user, conn))
		}
	}
	r.mu.Unlock()
	b := newBatch(r.client)
	b.pipe.Del(ctx, r.connsKey, r.userCountsKey, r.chatsKey)
	if len(conns) > 0 {
		b.pipe.SAdd(ctx, r.connsKey, conns...)
		b.pipe.PExpire(ctx, r.connsKey, r.ttl)
		b.pipe.HSet(ctx, r.userCountsKey, userCounts...)
		b.pipe.PExpire(ctx, r.userCountsKey, r.ttl)
	}
	if len(chats) > 0 {
		b.pipe.SAdd(ctx, r.chatsKey, chats...)
		b.pipe.PExpire(ctx, r.chatsKey, r.ttl)
	}
	for user, members := range snap {
		b.script(ctx, refreshScript, []string{r.userKey(user)}, append([]any{r.ttlMS, "ADD"}, members...)...)
	}
	if err := b.exec(ctx, r.client); err != nil {
		return wrapErr("refresh", err)
	}
	r.needRebuild.Store(false)
	return nil
}

// Stats implements [Presence]: two round trips (the live nodes, then one
// script over their sets). The script costs Redis time linear in the
// number of users and chats on the shard of {nodes}: call it for metrics
// and admin, not per event. With a StatsMaxAge, cached figures cost one
// round trip (a GET) and the scan runs at most once per StatsMaxAge in the
// whole cluster; the figures are then exact as of when they were computed.
func (r *Redis) Stats(ctx context.Context) (Stats, error) {
	if r.closed.Load() {
		return Stats{}, ErrClosed
	}
	if err := r.register(ctx); err != nil {
		return Stats{}, err
	}
	liveKeys := []string{r.liveKey}
	if r.statsMaxAgeMS > 0 {
		liveKeys = append(liveKeys, r.statsKey)
	}
	live, err := liveScript.Run(ctx, r.client, liveKeys).Slice()
	if err != nil {
		return Stats{}, wrapErr("stats", err)
	}
	if len(live) == 0 {
		return Stats{}, fmt.Errorf("presence: stats: empty reply")
	}
	if cached, ok := live[0].(string); ok {
		return parseStats(cached)
	}
	nodes := make([]string, 0, len(live)-1)
	for _, v := range live[1:] {
		n, ok := v.(string)
		if !ok {
			return Stats{}, fmt.Errorf("presence: stats: unexpected node %v", v)
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return Stats{}, nil
	}
	keys := make([]string, 0, 3*len(nodes)+2)
	for _, what := range []string{"conns", "usercounts", "chats"} {
		for _, n := range nodes {
			keys = append(keys, r.nodeKey(n, what))
		}
	}
	keys = append(keys, r.scratchKey)
	args := []any{len(nodes)}
	if r.statsMaxAgeMS > 0 {
		keys = append(keys, r.statsKey)
		args = append(args, r.statsMaxAgeMS)
	}
	v, err := statsScript.Run(ctx, r.client, keys, args...).Text()
	if err != nil {
		return Stats{}, wrapErr("stats", err)
	}
	return parseStats(v)
}

// parseStats decodes the stats script's "nodes:conns:users:chats".
func parseStats(s string) (Stats, error) {
	var st Stats
	fields := strings.Split(s, ":")
	if len(fields) != 4 {
		return Stats{}, fmt.Errorf("presence: stats: unexpected reply %q", s)
	}
	for i, dst := range []*int{&st.Nodes, &st.Connections, &st.Users, &st.Chats} {
		n, err := strconv.Atoi(fields[i])
		if err != nil {
			return Stats{}, fmt.Errorf("presence: stats: unexpected reply %q", s)
		}
		*dst = n
	}
	return st, nil
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
	r.bookMu.Lock()
	defer r.bookMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	b := newBatch(r.client)
	for user, members := range r.snapshot() {
		b.pipe.ZRem(ctx, r.userKey(user), members...)
	}
	b.pipe.Del(ctx, r.aliveKey, r.connsKey, r.userCountsKey, r.chatsKey)
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
