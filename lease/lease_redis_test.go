package lease_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/lease/leasetest"
)

func TestRedis(t *testing.T) {
	redistest.OnEachDeployment(t, func(t *testing.T, c redis.UniversalClient) {
		leasetest.Run(t, func(t *testing.T, _ func() time.Time) lease.Lease {
			return newRedis(t, c, redistest.Prefix(t))
		}, leasetest.Options{ServerClock: true})
	})
}

func newRedis(t testing.TB, c redis.UniversalClient, prefix string) *lease.Redis {
	t.Helper()
	return must.Get[*lease.Redis](t)(lease.NewRedis(c, lease.RedisConfig{Prefix: prefix}))
}

func TestRedisKeyLayout(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	l := newRedis(t, c, "")
	term, ok, err := l.TryAcquire(ctx, "rtm", "node-a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryAcquire: ok=%v err=%v", ok, err)
	}
	if v := c.Get(ctx, "rt:{lease:rtm}").Val(); v != "node-a|1" || term.Fencing != 1 {
		t.Fatalf("lease value %q, fencing %d; want node-a|1, 1", v, term.Fencing)
	}
	if v := c.Get(ctx, "rt:{lease:rtm}:fencing").Val(); v != "1" {
		t.Fatalf("fencing counter %q, want 1", v)
	}
	if ttl := c.PTTL(ctx, "rt:{lease:rtm}").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("lease PTTL %v, want (0, 1m]", ttl)
	}
	if ttl := c.PTTL(ctx, "rt:{lease:rtm}:fencing").Val(); ttl != -1 {
		t.Fatalf("fencing PTTL %v, want none (-1)", ttl)
	}
}

func TestRedisOneRoundTripPerCall(t *testing.T) {
	c := redistest.Client(t)
	ctx := t.Context()
	l := newRedis(t, c, redistest.Prefix(t))
	// Warm up: the first run of each script loads it (EVALSHA, then EVAL).
	a, _, _ := l.TryAcquire(ctx, "warm", "a", time.Second)
	_, _ = l.Renew(ctx, "warm", a, time.Second)
	_ = l.Release(ctx, "warm", a)

	redistest.CountRoundTrips(c).Expect(t, []redistest.Call{
		{Name: "TryAcquire", Do: func() error { _, _, err := l.TryAcquire(ctx, "rtm", "a", time.Second); return err }},
		{Name: "TryAcquire refused", Do: func() error { _, _, err := l.TryAcquire(ctx, "rtm", "b", time.Second); return err }},
		{Name: "Renew", Do: func() error {
			_, err := l.Renew(ctx, "rtm", lease.Term{Holder: "a", Fencing: 1}, time.Second)
			return err
		}},
		{Name: "Holder", Do: func() error { _, _, err := l.Holder(ctx, "rtm"); return err }},
		{Name: "Release", Do: func() error { return l.Release(ctx, "rtm", lease.Term{Holder: "a", Fencing: 1}) }},
	})
}

func TestRedisUnavailable(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.FailFastClient()
	l := newRedis(t, c, redistest.Prefix(t))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	term, ok, err := l.TryAcquire(ctx, "rtm", "a", time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryAcquire: ok=%v err=%v", ok, err)
	}
	s.Kill()
	calls := map[string]func() error{
		"TryAcquire": func() error { _, _, err := l.TryAcquire(ctx, "rtm", "a", time.Minute); return err },
		"Renew":      func() error { _, err := l.Renew(ctx, "rtm", term, time.Minute); return err },
		"Release":    func() error { return l.Release(ctx, "rtm", term) },
		"Holder":     func() error { _, _, err := l.Holder(ctx, "rtm"); return err },
	}
	redistest.ExpectErr(t, lease.ErrUnavailable, "with Redis down", calls)
}

func TestRedisBadConfig(t *testing.T) {
	if _, err := lease.NewRedis(nil, lease.RedisConfig{}); err == nil {
		t.Fatal("nil client accepted")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := lease.NewRedis(c, lease.RedisConfig{Prefix: "x}"}); err == nil {
		t.Fatal("prefix with '}' accepted")
	}
}
