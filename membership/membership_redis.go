package membership

import (
	"context"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisprefix"
)

// Interface guard.
var _ Store = (*Redis)(nil)

// DefaultPrefix is the key prefix used when RedisConfig.Prefix is empty.
const DefaultPrefix = redisprefix.Default

// RedisConfig configures [NewRedis]. The zero value works.
type RedisConfig struct {
	// Prefix starts every key, so clusters can share a Redis. Default "rt".
	// It must not contain '{' or '}' (those would break the hash tags).
	Prefix string
}

// Redis is the cluster [Store]: one set per chat, "<prefix>:{chat:<id>}:members".
// Every call is one command, so one round trip.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a store on client. It does no I/O.
func NewRedis(client redis.UniversalClient, cfg RedisConfig) (*Redis, error) {
	prefix, err := redisprefix.Resolve("membership", client, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	return &Redis{client: client, prefix: prefix}, nil
}

// key returns the Redis key of chatID's member set.
func (r *Redis) key(chatID string) string {
	return r.prefix + ":{chat:" + chatID + "}:members"
}

// Add implements [Store] with SADD.
func (r *Redis) Add(ctx context.Context, chatID, userID string) (bool, error) {
	n, err := r.client.SAdd(ctx, r.key(chatID), userID).Result()
	if err != nil {
		return false, wrapErr("add", err)
	}
	return n == 1, nil
}

// Remove implements [Store] with SREM.
func (r *Redis) Remove(ctx context.Context, chatID, userID string) (bool, error) {
	n, err := r.client.SRem(ctx, r.key(chatID), userID).Result()
	if err != nil {
		return false, wrapErr("remove", err)
	}
	return n == 1, nil
}

// IsMember implements [Store] with SISMEMBER.
func (r *Redis) IsMember(ctx context.Context, chatID, userID string) (bool, error) {
	ok, err := r.client.SIsMember(ctx, r.key(chatID), userID).Result()
	if err != nil {
		return false, wrapErr("is member", err)
	}
	return ok, nil
}

// Members implements [Store] with SMEMBERS, sorted here. An unknown chat
// yields an empty, non-nil slice.
func (r *Redis) Members(ctx context.Context, chatID string) ([]string, error) {
	out, err := r.client.SMembers(ctx, r.key(chatID)).Result()
	if err != nil {
		return nil, wrapErr("members", err)
	}
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return out, nil
}

// wrapErr adds context to a Redis error; connection, timeout and "server not
// ready" errors also match [ErrUnavailable].
func wrapErr(op string, err error) error { return rediserr.Wrap("membership", op, ErrUnavailable, err) }
