package registry

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisscript"
)

var (
	//go:embed lua/announce.lua
	announceLua    string
	announceScript = redisscript.New(announceLua)

	//go:embed lua/list.lua
	listLua    string
	listScript = redisscript.New(listLua)
)

// Redis is the cluster [Registry]. Expiry uses the Redis server's clock
// (TIME inside the scripts). Key layout (prefix "rt"), one hash slot:
//
//	rt:{nodes}:registry       sorted set of node ids, score = expiry (ms)
//	rt:{nodes}:registry:docs  hash, node id -> announced JSON document
//
// Every call is one round trip.
type Redis struct {
	client           redis.UniversalClient
	liveKey, docsKey string
}

// Interface guard.
var _ Registry = (*Redis)(nil)

// NewRedis returns the registry under prefix ("rt" when empty), which must
// not contain '{' or '}'.
func NewRedis(client redis.UniversalClient, prefix string) (*Redis, error) {
	if client == nil {
		return nil, errors.New("registry: nil redis client")
	}
	if prefix == "" {
		prefix = "rt"
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("registry: prefix %q must not contain '{' or '}'", prefix)
	}
	return &Redis{client: client, liveKey: prefix + ":{nodes}:registry", docsKey: prefix + ":{nodes}:registry:docs"}, nil
}

// Announce implements [Registry].
func (r *Redis) Announce(ctx context.Context, id string, doc json.RawMessage, ttl time.Duration) error {
	if err := checkAnnounce(id, doc, ttl); err != nil {
		return err
	}
	err := announceScript.Run(ctx, r.client, []string{r.liveKey, r.docsKey}, id, string(doc), ttl.Milliseconds()).Err()
	return wrapErr("announce", err)
}

// Remove implements [Registry].
func (r *Redis) Remove(ctx context.Context, id string) error {
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, r.liveKey, id)
		p.HDel(ctx, r.docsKey, id)
		return nil
	})
	return wrapErr("remove", err)
}

// List implements [Registry].
func (r *Redis) List(ctx context.Context, limit int) ([]json.RawMessage, error) {
	docs, err := listScript.Run(ctx, r.client, []string{r.liveKey, r.docsKey}, clampLimit(limit)).StringSlice()
	if err != nil {
		return nil, wrapErr("list", err)
	}
	// Announce bounds what a node writes; a document written to Redis by
	// other means may be anything, and is dropped unless it is one Announce
	// could have written.
	out := make([]json.RawMessage, 0, len(docs))
	for _, d := range docs {
		if len(d) <= MaxDocBytes && json.Valid([]byte(d)) {
			out = append(out, json.RawMessage(d))
		}
	}
	return out, nil
}

// wrapErr adds context; connection and timeout errors also match [ErrUnavailable].
func wrapErr(op string, err error) error { return rediserr.Wrap("registry", op, ErrUnavailable, err) }
