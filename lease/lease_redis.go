package lease

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisprefix"
	"github.com/anchat/realtime/internal/redisscript"
)

// Interface guard.
var _ Lease = (*Redis)(nil)

// DefaultPrefix is the key prefix used when RedisConfig.Prefix is empty.
const DefaultPrefix = redisprefix.Default

//go:embed lua/*.lua
var luaFS embed.FS

var (
	acquireScript = redisscript.FromFS(luaFS, "lua/acquire.lua")
	renewScript   = redisscript.FromFS(luaFS, "lua/renew.lua")
	releaseScript = redisscript.FromFS(luaFS, "lua/release.lua")
)

// RedisConfig configures [NewRedis]. The zero value works.
type RedisConfig struct {
	// Prefix starts every key, so clusters can share a Redis. Default "rt".
	// It must not contain '{' or '}' (those would break the hash tags).
	Prefix string
}

// Redis is the cluster [Lease]. Keys, for lease name n:
//
//	<prefix>:{lease:n}          "<holder>|<fencing>" with PX ttl
//	<prefix>:{lease:n}:fencing  INCR counter, no TTL
//
// Both share the hash tag, so the acquire script stays in one slot. TTLs run
// on the Redis server's clock; a holder should treat its lease as lost at its
// own start+ttl (measured locally before the call) if it could not renew.
// Every call is one round trip (EVALSHA; EVAL once after a script flush).
//
// The fencing counter has no TTL and is never deleted; if it is lost (a Redis
// restart without persistence) fencing numbers start again from 1.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a lease on client. It does no I/O.
func NewRedis(client redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	prefix, err := redisprefix.Resolve("lease", client, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	return &Redis{client: client, prefix: prefix}, nil
}

func (r *Redis) key(name string) string { return r.prefix + ":{lease:" + name + "}" }

// TryAcquire implements [Lease].
func (r *Redis) TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (Term, bool, error) {
	if err := checkTTL(ttl); err != nil {
		return Term{}, false, err
	}
	k := r.key(name)
	v, err := acquireScript.Run(ctx, r.client, []string{k, k + ":fencing"}, holder, ttlMillis(ttl)).Slice()
	if err != nil {
		return Term{}, false, wrapErr("acquire", err)
	}
	return parseAcquireReply(v, holder)
}

// parseAcquireReply reads acquire.lua's reply: {1, fencing} when granted,
// {0, fencing, holder} when another holder has the lease. Any other shape is
// an error, never a panic.
func parseAcquireReply(v []any, holder string) (Term, bool, error) {
	if len(v) < 2 {
		return Term{}, false, fmt.Errorf("lease: acquire: unexpected reply %v", v)
	}
	fencing, err := strconv.ParseInt(fmt.Sprint(v[1]), 10, 64)
	if err != nil {
		return Term{}, false, fmt.Errorf("lease: acquire: bad fencing %v: %w", v[1], err)
	}
	if ok, _ := v[0].(int64); ok == 1 {
		return Term{Holder: holder, Fencing: fencing}, true, nil
	}
	if len(v) < 3 {
		return Term{}, false, fmt.Errorf("lease: acquire: refusal without a holder %v", v)
	}
	other, ok := v[2].(string)
	if !ok {
		return Term{}, false, fmt.Errorf("lease: acquire: holder %v is not a string", v[2])
	}
	return Term{Holder: other, Fencing: fencing}, false, nil
}

// Renew implements [Lease].
func (r *Redis) Renew(ctx context.Context, name string, term Term, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	n, err := renewScript.Run(ctx, r.client, []string{r.key(name)}, encode(term), ttlMillis(ttl)).Int()
	if err != nil {
		return false, wrapErr("renew", err)
	}
	return n == 1, nil
}

// Release implements [Lease].
func (r *Redis) Release(ctx context.Context, name string, term Term) error {
	if err := releaseScript.Run(ctx, r.client, []string{r.key(name)}, encode(term)).Err(); err != nil {
		return wrapErr("release", err)
	}
	return nil
}

// Holder implements [Lease] with one GET.
func (r *Redis) Holder(ctx context.Context, name string) (Term, bool, error) {
	v, err := r.client.Get(ctx, r.key(name)).Result()
	if errors.Is(err, redis.Nil) {
		return Term{}, false, nil
	}
	if err != nil {
		return Term{}, false, wrapErr("holder", err)
	}
	t, err := decode(v)
	if err != nil {
		return Term{}, false, err
	}
	return t, true, nil
}

func encode(t Term) string { return t.Holder + "|" + strconv.FormatInt(t.Fencing, 10) }

// decode parses "<holder>|<fencing>"; the holder may itself contain '|'.
func decode(v string) (Term, error) {
	i := strings.LastIndexByte(v, '|')
	if i < 0 {
		return Term{}, fmt.Errorf("lease: malformed value %q", v)
	}
	f, err := strconv.ParseInt(v[i+1:], 10, 64)
	if err != nil {
		return Term{}, fmt.Errorf("lease: malformed value %q: %w", v, err)
	}
	return Term{Holder: v[:i], Fencing: f}, nil
}

// ttlMillis rounds up to whole milliseconds (PX takes milliseconds, at least 1).
func ttlMillis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// wrapErr adds context to a Redis error; connection, timeout and "server not
// ready" errors also match [ErrUnavailable].
func wrapErr(op string, err error) error { return rediserr.Wrap("lease", op, ErrUnavailable, err) }
