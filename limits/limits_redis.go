package limits

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisprefix"
	"github.com/anchat/realtime/internal/redisscript"
)

// Interface guard.
var _ Limiter = (*Redis)(nil)

// DefaultPrefix is the key prefix used when RedisConfig.Prefix is empty.
const DefaultPrefix = redisprefix.Default

var (
	// WindowRuleLua defines the Lua function window_allow, the [Window]
	// rule on the limiter's sorted set (see lua/window_rule.lua). Another
	// engine's script that folds a limit into its own work (the bus's send
	// and typing scripts) starts with it, so that every script counts the
	// same way on the same key.
	//go:embed lua/window_rule.lua
	WindowRuleLua string
	//go:embed lua/window.lua
	windowLua    string
	windowScript = redisscript.New(WindowRuleLua + windowLua)
)

// RedisConfig configures [NewRedis]. The zero value works.
type RedisConfig struct {
	// Prefix starts every key, so clusters can share a Redis. Default "rt".
	// It must not contain '{' or '}' (those would break the hash tags).
	Prefix string
	// Now is the clock of the [Window] policy; default time.Now. Each node
	// passes its own time to the script, so the nodes' clocks are assumed
	// NTP-synced: a skew of s between two nodes only shifts their events by
	// s within the window. [GCRA] ignores it (redis_rate reads the Redis
	// server's clock).
	Now Clock
}

// Redis is the cluster [Limiter]; every check is one round trip (EVALSHA,
// or EVAL once after a script flush).
//
//   - [Window]: a Lua script over a sorted set per key,
//     "<prefix>:{lim:<key>}", scores in microseconds of the caller's clock,
//     members unique per event (a random per-limiter nonce and a counter).
//     The set expires a window after its last accepted event.
//   - [GCRA]: go-redis/redis_rate with Rate = Burst = N and Period = Window, on
//     the key "rate:<prefix>:{lim:<key>}:gcra" (redis_rate adds its own
//     "rate:" in front). It reads the Redis server's clock.
type Redis struct {
	client redis.UniversalClient
	prefix string
	now    Clock
	gcra   *redis_rate.Limiter
	nonce  string        // distinguishes this limiter's members from other nodes'
	seq    atomic.Uint64 // makes members unique within this limiter
}

// NewRedis returns a limiter on client. It does no I/O.
func NewRedis(client redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	prefix, err := redisprefix.Resolve("limits", client, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	cfg.Prefix = prefix
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Redis{
		client: client,
		prefix: cfg.Prefix,
		now:    cfg.Now,
		gcra:   redis_rate.NewLimiter(client),
		nonce:  hex.EncodeToString(b[:]),
	}, nil
}

func (r *Redis) key(key string) string { return r.prefix + ":{lim:" + key + "}" }

// Allow implements [Limiter].
func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if err := l.Validate(); err != nil {
		return Result{}, err
	}
	if l.Policy == GCRA {
		return r.allowGCRA(ctx, key, l)
	}
	return r.allowWindow(ctx, key, l)
}

func (r *Redis) allowWindow(ctx context.Context, key string, l Limit) (Result, error) {
	c, err := r.Check(key, l)
	if err != nil {
		return Result{}, err
	}
	v, err := windowScript.Run(ctx, r.client, []string{c.Key},
		c.Now, c.Cutoff, c.Window, c.N, c.Member).Int64Slice()
	if err != nil {
		return Result{}, wrapErr("allow", err)
	}
	if len(v) != 3 {
		return Result{}, fmt.Errorf("limits: allow: unexpected reply %v", v)
	}
	if v[0] == 1 {
		return Result{Allowed: true, Remaining: int(v[1])}, nil
	}
	return Result{RetryAfter: time.Duration(v[2]) * time.Microsecond}, nil
}

func (r *Redis) allowGCRA(ctx context.Context, key string, l Limit) (Result, error) {
	res, err := r.gcra.Allow(ctx, r.key(key)+":gcra", redis_rate.Limit{Rate: l.N, Burst: l.N, Period: l.Window})
	if err != nil {
		return Result{}, wrapErr("allow", err)
	}
	if res.Allowed > 0 {
		return Result{Allowed: true, Remaining: res.Remaining}, nil
	}
	// redis_rate reports -1 when allowed; when refused RetryAfter is positive.
	return Result{RetryAfter: max(res.RetryAfter, time.Nanosecond)}, nil
}

// wrapErr adds context to a Redis error; connection, timeout and "server not
// ready" errors also match [ErrUnavailable].
func wrapErr(op string, err error) error { return rediserr.Wrap("limits", op, ErrUnavailable, err) }

// WindowCheck is one [Window] check of a [Redis] limiter in the form another
// engine's script can run (and count) atomically with its own work, on a
// Redis where one script may touch both (not a Redis Cluster: the key is in
// the limited key's slot). The arguments and the accept/refuse rule are
// those of lua/window.lua, on the same key, so checks made this way and with
// [Redis.Allow] share one budget.
type WindowCheck struct {
	Key    string // the limiter's Redis key
	Now    int64  // µs of the limiter's clock
	Cutoff int64  // Now - window
	Window int64  // µs
	N      int
	Member string // unique per event
}

// Check returns the [WindowCheck] of one event under key; l must be a valid
// [Window] limit.
func (r *Redis) Check(key string, l Limit) (WindowCheck, error) {
	if err := l.Validate(); err != nil {
		return WindowCheck{}, err
	}
	if l.Policy != Window {
		return WindowCheck{}, fmt.Errorf("%w: only Window limits can be folded into a script", ErrBadLimit)
	}
	now := r.now().UnixMicro()
	window := max(l.Window.Microseconds(), 1)
	var buf [48]byte
	member := strconv.AppendUint(append(append(buf[:0], r.nonce...), ':'), r.seq.Add(1), 10)
	return WindowCheck{Key: r.key(key), Now: now, Cutoff: now - window, Window: window, N: l.N, Member: string(member)}, nil
}
