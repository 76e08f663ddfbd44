package rtm

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/rediserr"
	"github.com/anchat/realtime/internal/redisprefix"
	"github.com/anchat/realtime/internal/redisscript"
)

// Interface guard.
var _ Store = (*RedisStore)(nil)

//go:embed lua/*.lua
var luaFS embed.FS

var (
	putScript         = redisscript.FromFS(luaFS, "lua/put.lua")
	setStateScript    = redisscript.FromFS(luaFS, "lua/state_set.lua")
	deleteStateScript = redisscript.FromFS(luaFS, "lua/state_delete.lua")
	recountScript     = redisscript.FromFS(luaFS, "lua/recount.lua")
	pageScript        = redisscript.FromFS(luaFS, "lua/page.lua")
)

// RedisStoreConfig configures [NewRedisStore]. The zero value works.
type RedisStoreConfig struct {
	// Prefix starts every key and channel, so clusters can share a Redis.
	// Default "rt". It must not contain '{' or '}'.
	Prefix string
}

// RedisStore is the cluster [Store]. Keys, with the default prefix:
//
//	rt:{rtm}:profiles   hash  profile id -> {"version":N,"session":{...}}
//	rt:{rtm}:version    INCR counter of session versions
//	rt:{rtm}:state      hash  profile id -> state, written by the leader
//	rt:{rtm}:statecounts hash state -> number of profiles in it, kept with
//	                    every state write once the leader has counted them
//	rt:{rtm}:stateids   sorted set of the ids with a state (score 0, for
//	                    paging in id order), kept with the counts
//	rt:{rtm}:figures    hash  profile id -> figures (JSON), written by the leader
//	rt:{rtm}:changes    pub/sub channel: a profile id after each put or delete, "" for Signal
//	rt:rtm:seen:<key>   "1" with EX ttl (SET NX): upstream ids already published
//
// The {rtm} keys share a hash tag (one Redis Cluster slot); seen keys do
// not, so they spread over the cluster. A put is one Lua script (INCR,
// HSET, PUBLISH), a delete one too (HDELs, the counts, INCR, PUBLISH), as
// is a state write (HSET and the counts): the counts by state never
// disagree with the state hash, so StateCounts reads 3 fields instead of
// every profile's.
type RedisStore struct {
	client redis.UniversalClient

	profiles, version, state, counts, ids, figures, changes, seen string
}

// NewRedisStore returns a store on client, which the caller owns. It does
// no I/O.
func NewRedisStore(client redis.UniversalClient, cfg RedisStoreConfig) (*RedisStore, error) {
	prefix, err := redisprefix.Resolve("rtm", client, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	cfg.Prefix = prefix
	tag := cfg.Prefix + ":{rtm}:"
	return &RedisStore{
		client:   client,
		profiles: tag + "profiles",
		version:  tag + "version",
		state:    tag + "state",
		counts:   tag + "statecounts",
		ids:      tag + "stateids",
		figures:  tag + "figures",
		changes:  tag + "changes",
		seen:     cfg.Prefix + ":rtm:seen:",
	}, nil
}

// PutSession implements [Store].
func (s *RedisStore) PutSession(ctx context.Context, profileID string, session json.RawMessage) error {
	if err := checkProfileID(profileID); err != nil {
		return err
	}
	if !json.Valid(session) {
		return fmt.Errorf("%w: not valid JSON", ErrBadSession)
	}
	err := putScript.Run(ctx, s.client, []string{s.profiles, s.version}, profileID, []byte(session), s.changes).Err()
	return wrapRedis("put session", err)
}

// DeleteSession implements [Store]: one script, which also takes a new
// session version.
func (s *RedisStore) DeleteSession(ctx context.Context, profileID string) error {
	keys := []string{s.state, s.figures, s.counts, s.ids, s.profiles, s.version}
	err := deleteStateScript.Run(ctx, s.client, keys, profileID, s.changes).Err()
	return wrapRedis("delete session", err)
}

// SessionsVersion implements [Store]: one GET of the version counter.
func (s *RedisStore) SessionsVersion(ctx context.Context) (int64, error) {
	v, err := s.client.Get(ctx, s.version).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, wrapRedis("sessions version", err)
	}
	return v, nil
}

// Sessions implements [Store]. Entries it cannot parse are skipped.
func (s *RedisStore) Sessions(ctx context.Context) (map[string]Session, error) {
	return hashOf(ctx, s.client, s.profiles, "sessions", func(v string) (Session, bool) {
		var e struct {
			Version int64           `json:"version"`
			Session json.RawMessage `json:"session"`
		}
		if json.Unmarshal([]byte(v), &e) != nil || len(e.Session) == 0 {
			return Session{}, false
		}
		return Session{Version: e.Version, Data: e.Session}, true
	})
}

// SetState implements [Store]: one script (HSET and the counts).
func (s *RedisStore) SetState(ctx context.Context, profileID string, state State) error {
	err := setStateScript.Run(ctx, s.client, []string{s.state, s.counts, s.ids}, profileID, string(state)).Err()
	return wrapRedis("set state", err)
}

// DeleteState implements [Store]: one script (HDELs and the counts).
func (s *RedisStore) DeleteState(ctx context.Context, profileID string) error {
	err := deleteStateScript.Run(ctx, s.client, []string{s.state, s.figures, s.counts, s.ids}, profileID).Err()
	return wrapRedis("delete state", err)
}

// StateCounts implements [Store]: one HMGET of the counts hash's field of
// each of [States]. Until the leader has counted them (RecountStates, once
// a term; the counts then hold every state, even at 0) it counts the state
// hash instead, as States would.
func (s *RedisStore) StateCounts(ctx context.Context) (map[State]int, error) {
	fields := make([]string, len(States))
	for i, st := range States {
		fields[i] = string(st)
	}
	values, err := s.client.HMGet(ctx, s.counts, fields...).Result()
	if err != nil {
		return nil, wrapRedis("state counts", err)
	}
	counts := make(map[State]int, len(States))
	kept := false
	for i, v := range values {
		str, ok := v.(string) // nil: not counted
		if !ok {
			continue
		}
		kept = true
		n, err := strconv.Atoi(str)
		if err != nil {
			return nil, fmt.Errorf("rtm: state counts: %s=%q: %w", fields[i], str, err)
		}
		if n > 0 {
			counts[States[i]] = n
		}
	}
	if !kept {
		states, err := s.States(ctx)
		if err != nil {
			return nil, err
		}
		return countStates(states), nil
	}
	return counts, nil
}

// StatesPage implements [Store]: one script (ZRANGEBYLEX of the ids, then
// HMGET of their states and figures), in time following the page, not the
// profiles. Until the leader has counted the states (RecountStates, once a
// term) it reads both hashes whole instead, as States and Figures would.
func (s *RedisStore) StatesPage(ctx context.Context, after string, limit int) ([]StoredState, bool, error) {
	if limit <= 0 {
		return nil, false, fmt.Errorf("rtm: states page: limit %d must be positive", limit)
	}
	var page []StoredState
	for {
		got, last, more, err := s.pageOnce(ctx, after, limit-len(page))
		if errors.Is(err, redis.Nil) {
			return s.pageOfAll(ctx, after, limit)
		}
		if err != nil {
			return nil, false, err
		}
		page = append(page, got...)
		// Ids the set keeps without a state (drift the leader's recount
		// repairs) are left out; the page is filled from the ids after the
		// last one read, so a page of them does not end the listing early.
		if !more || len(page) == limit {
			return page, more, nil
		}
		after = last
	}
}

// pageOnce is one run of the page script: the states among the next limit
// ids after after, the last id read, and whether more follow. redis.Nil:
// the ids are not kept yet.
func (s *RedisStore) pageOnce(ctx context.Context, after string, limit int) (page []StoredState, last string, more bool, err error) {
	keys := []string{s.state, s.figures, s.counts, s.ids}
	reply, err := pageScript.Run(ctx, s.client, keys, after, limit).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, "", false, err
	}
	if err != nil {
		return nil, "", false, wrapRedis("states page", err)
	}
	bad := fmt.Errorf("rtm: states page: unexpected reply %v", reply)
	if len(reply) != 4 {
		return nil, "", false, bad
	}
	moreN, _ := reply[0].(int64)
	ids, _ := reply[1].([]any)
	states, _ := reply[2].([]any)
	figures, _ := reply[3].([]any)
	if len(states) != len(ids) || len(figures) != len(ids) {
		return nil, "", false, bad
	}
	page = make([]StoredState, 0, len(ids))
	for i, v := range ids {
		id, _ := v.(string)
		last = id
		st, ok := states[i].(string)
		if !ok { // an id without a state: left out
			continue
		}
		p := StoredState{ID: id, State: State(st)}
		if raw, ok := figures[i].(string); ok {
			var f Figures
			if json.Unmarshal([]byte(raw), &f) == nil { // undecodable: no figures, as in Figures
				p.Figures = f
			}
		}
		page = append(page, p)
	}
	if moreN == 1 && len(ids) == 0 {
		return nil, "", false, bad // more, yet nothing to continue after
	}
	return page, last, moreN == 1, nil
}

// pageOfAll is StatesPage from the whole state and figures hashes.
func (s *RedisStore) pageOfAll(ctx context.Context, after string, limit int) ([]StoredState, bool, error) {
	states, err := s.States(ctx)
	if err != nil {
		return nil, false, err
	}
	figures, err := s.Figures(ctx)
	if err != nil {
		return nil, false, err
	}
	page, more := pageOf(states, figures, after, limit)
	return page, more, nil
}

// RecountStates implements [Store]: one script, in time linear in the
// profiles, on the server; it rebuilds the ids StatesPage reads too when
// their number is off.
func (s *RedisStore) RecountStates(ctx context.Context) error {
	args := make([]any, len(States))
	for i, st := range States {
		args[i] = string(st)
	}
	return wrapRedis("recount states", recountScript.Run(ctx, s.client, []string{s.state, s.counts, s.ids}, args...).Err())
}

// SetFigures implements [Store]: one HSET of JSON values.
func (s *RedisStore) SetFigures(ctx context.Context, figures map[string]Figures) error {
	if len(figures) == 0 {
		return nil
	}
	fields := make([]any, 0, 2*len(figures))
	for id, f := range figures {
		b, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("rtm: set figures: %w", err)
		}
		fields = append(fields, id, b)
	}
	return wrapRedis("set figures", s.client.HSet(ctx, s.figures, fields...).Err())
}

// Figures implements [Store]; a value it cannot decode is left out.
func (s *RedisStore) Figures(ctx context.Context) (map[string]Figures, error) {
	return hashOf(ctx, s.client, s.figures, "figures", func(v string) (Figures, bool) {
		var f Figures
		err := json.Unmarshal([]byte(v), &f)
		return f, err == nil
	})
}

// States implements [Store].
func (s *RedisStore) States(ctx context.Context) (map[string]State, error) {
	return hashOf(ctx, s.client, s.state, "states", func(v string) (State, bool) { return State(v), true })
}

// StatesOf implements [Store]: one HMGET of the profiles' fields of the
// state hash (one key, so one Redis Cluster slot, however many profiles).
func (s *RedisStore) StatesOf(ctx context.Context, profileIDs []string) (map[string]State, error) {
	out := make(map[string]State, len(profileIDs))
	if len(profileIDs) == 0 {
		return out, nil // HMGET needs a field
	}
	values, err := s.client.HMGet(ctx, s.state, profileIDs...).Result()
	if err != nil {
		return nil, wrapRedis("states of", err)
	}
	for i, v := range values {
		if st, ok := v.(string); ok { // nil: no state
			out[profileIDs[i]] = State(st)
		}
	}
	return out, nil
}

// hashOf reads the hash key (one HGETALL) into a map, each value decoded by
// decode; the entries it refuses are left out. what names the call in errors.
func hashOf[V any](ctx context.Context, c redis.UniversalClient, key, what string, decode func(string) (V, bool)) (map[string]V, error) {
	all, err := c.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, wrapRedis(what, err)
	}
	out := make(map[string]V, len(all))
	for id, v := range all {
		if d, ok := decode(v); ok {
			out[id] = d
		}
	}
	return out, nil
}

// MarkSeen implements [Store] with one SET NX EX.
func (s *RedisStore) MarkSeen(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.seen+key, "1", ttl).Result()
	if err != nil {
		return false, wrapRedis("mark seen", err)
	}
	return ok, nil
}

// Signal implements [Store].
func (s *RedisStore) Signal(ctx context.Context) error {
	return wrapRedis("signal", s.client.Publish(ctx, s.changes, "").Err())
}

// Watch implements [Store]: a subscription to the changes channel. Every
// (re)subscription confirmation also signals, since messages published
// while the subscription was down are lost.
func (s *RedisStore) Watch(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	ps := s.client.Subscribe(ctx, s.changes)
	msgs := ps.ChannelWithSubscriptions(redis.WithChannelSize(16))
	go func() {
		defer close(out)
		defer ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return
				}
				poke(out)
			}
		}
	}()
	return out
}

// wrapRedis adds context to a Redis error; connection, timeout and "not
// now" errors also match [ErrUnavailable].
func wrapRedis(op string, err error) error { return rediserr.Wrap("rtm", op, ErrUnavailable, err) }
