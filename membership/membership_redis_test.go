package membership_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/membership/membershiptest"
)

func TestRedis(t *testing.T) {
	c := redistest.Client(t)
	membershiptest.Run(t, func(t *testing.T) membership.Store {
		return newRedis(t, c, redistest.Prefix(t))
	})
}

func newRedis(t *testing.T, c redis.UniversalClient, prefix string) *membership.Redis {
	t.Helper()
	return must.Get[*membership.Redis](t)(membership.NewRedis(c, membership.RedisConfig{Prefix: prefix}))
}

func TestRedisKeyLayout(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	r, err := membership.NewRedis(c, membership.RedisConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(ctx, "general", "alice"); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "rt:{chat:general}:members" {
		t.Fatalf("keys = %q, want [rt:{chat:general}:members]", keys)
	}
}

func TestRedisBadPrefix(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := membership.NewRedis(c, membership.RedisConfig{Prefix: "a{b"}); err == nil {
		t.Fatal("prefix with '{' accepted")
	}
	if _, err := membership.NewRedis(nil, membership.RedisConfig{}); err == nil {
		t.Fatal("nil client accepted")
	}
}

func TestRedisUnavailable(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.FailFastClient()
	r := newRedis(t, c, redistest.Prefix(t))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := r.Add(ctx, "c", "u"); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	calls := map[string]func() error{
		"Add":      func() error { _, err := r.Add(ctx, "c", "v"); return err },
		"Remove":   func() error { _, err := r.Remove(ctx, "c", "u"); return err },
		"IsMember": func() error { _, err := r.IsMember(ctx, "c", "u"); return err },
		"Members":  func() error { _, err := r.Members(ctx, "c"); return err },
	}
	redistest.ExpectErr(t, membership.ErrUnavailable, "with Redis down", calls)
}

func TestRedisWrongTypeIsNotUnavailable(t *testing.T) {
	c := redistest.Client(t)
	r := newRedis(t, c, "p")
	if err := c.Set(t.Context(), "p:{chat:x}:members", "oops", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Add(t.Context(), "x", "u")
	if err == nil || errors.Is(err, membership.ErrUnavailable) {
		t.Fatalf("WRONGTYPE: %v, want an error that is not ErrUnavailable", err)
	}
}
