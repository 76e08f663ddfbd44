package limits_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/internal/testclock"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/limits/limitstest"
)

func TestRedis(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client()
	limitstest.Run(t, func(t *testing.T, now limits.Clock) limits.Limiter {
		return newRedis(t, c, limits.RedisConfig{Prefix: redistest.Prefix(t), Now: now})
	}, limitstest.Options{GCRAServerClock: true})
}

func newRedis(t testing.TB, c redis.UniversalClient, cfg limits.RedisConfig) *limits.Redis {
	t.Helper()
	return must.Get[*limits.Redis](t)(limits.NewRedis(c, cfg))
}

// Two limiters (two nodes) on one key share one budget.
func TestRedisSharedAcrossNodes(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client()
	clk := testclock.New(time.Unix(1_900_000_000, 0))
	prefix := redistest.Prefix(t)
	a := newRedis(t, c, limits.RedisConfig{Prefix: prefix, Now: clk.Now})
	b := newRedis(t, c, limits.RedisConfig{Prefix: prefix, Now: clk.Now})
	ctx := t.Context()
	for _, l := range []limits.Limit{limits.PerMinute(4), {Policy: limits.GCRA, N: 4, Window: time.Minute}} {
		n := 0
		for i := range 10 {
			lim := a
			if i%2 == 1 {
				lim = b
			}
			r, err := lim.Allow(ctx, "msg:alice", l)
			if err != nil {
				t.Fatal(err)
			}
			if r.Allowed {
				n++
			}
		}
		if n != 4 {
			t.Fatalf("policy %d: %d allowed across two nodes, want 4", l.Policy, n)
		}
	}
}

func TestRedisKeyLayout(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client()
	ctx := t.Context()
	r := newRedis(t, c, limits.RedisConfig{})
	if _, err := r.Allow(ctx, "msg:alice", limits.PerMinute(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Allow(ctx, "ip:10.0.0.1", limits.Limit{Policy: limits.GCRA, N: 60, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(slices.Sorted(slices.Values(keys)), " ")
	if want := "rate:rt:{lim:ip:10.0.0.1}:gcra rt:{lim:msg:alice}"; got != want {
		t.Fatalf("keys %q, want %q", got, want)
	}
	if ttl := c.PTTL(ctx, "rt:{lim:msg:alice}").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("window key PTTL %v, want (0, 1m]", ttl)
	}
}

func TestRedisOneRoundTripPerAllow(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client()
	ctx := t.Context()
	r := newRedis(t, c, limits.RedisConfig{Prefix: redistest.Prefix(t)})
	window := limits.PerMinute(2)
	gcra := limits.Limit{Policy: limits.GCRA, N: 2, Window: time.Minute}
	// Warm up: the first run of a script loads it (EVALSHA, then EVAL).
	_, _ = r.Allow(ctx, "warm", window)
	_, _ = r.Allow(ctx, "warm", gcra)

	var calls []redistest.Call
	for i := range 4 { // allowed twice, then refused twice
		for _, l := range []limits.Limit{window, gcra} {
			calls = append(calls, redistest.Call{
				Name: fmt.Sprintf("call %d, policy %d", i, l.Policy),
				Do:   func() error { _, err := r.Allow(ctx, "k", l); return err },
			})
		}
	}
	redistest.CountRoundTrips(c).Expect(t, calls)
}

func TestRedisUnavailable(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.FailFastClient()
	r := newRedis(t, c, limits.RedisConfig{Prefix: redistest.Prefix(t)})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := r.Allow(ctx, "k", limits.PerMinute(1)); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	for _, l := range []limits.Limit{limits.PerMinute(1), {Policy: limits.GCRA, N: 1, Window: time.Minute}} {
		if _, err := r.Allow(ctx, "k", l); !errors.Is(err, limits.ErrUnavailable) {
			t.Errorf("policy %d with Redis down: %v, want ErrUnavailable", l.Policy, err)
		}
	}
}

func TestRedisTimeoutIsUnavailable(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, ReadTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	r := newRedis(t, c, limits.RedisConfig{Prefix: redistest.Prefix(t)})
	ctx := t.Context()
	if _, err := r.Allow(ctx, "k", limits.PerMinute(1)); err != nil {
		t.Fatal(err)
	}
	s.Pause()
	defer s.Resume()
	if _, err := r.Allow(ctx, "k", limits.PerMinute(1)); !errors.Is(err, limits.ErrUnavailable) {
		t.Fatalf("Redis paused: %v, want ErrUnavailable", err)
	}
}

func TestRedisBadConfig(t *testing.T) {
	if _, err := limits.NewRedis(nil, limits.RedisConfig{}); err == nil {
		t.Fatal("nil client accepted")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := limits.NewRedis(c, limits.RedisConfig{Prefix: "{x"}); err == nil {
		t.Fatal("prefix with '{' accepted")
	}
}

func BenchmarkRedisWindowAllow(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	c := s.Client()
	ctx := context.Background()
	clk := testclock.New(time.Unix(1_900_000_000, 0))
	r := newRedis(b, c, limits.RedisConfig{Prefix: redistest.Prefix(b), Now: clk.Now})
	l := limits.PerMinute(30)
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(2 * time.Second) // always allowed: measures the accepting path
		if _, err := r.Allow(ctx, "msg:alice", l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisGCRAAllow(b *testing.B) {
	s := redistest.Start(b, redistest.Options{})
	c := s.Client()
	ctx := context.Background()
	r := newRedis(b, c, limits.RedisConfig{Prefix: redistest.Prefix(b)})
	l := limits.Limit{Policy: limits.GCRA, N: 60, Window: time.Minute}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Allow(ctx, "ip:10.0.0.1", l); err != nil {
			b.Fatal(err)
		}
	}
}
