package limits_test

import (
	"context"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/testclock"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/limits/limitstest"
)

func TestMemory(t *testing.T) {
	limitstest.Run(t, func(t *testing.T, now limits.Clock) limits.Limiter {
		return limits.NewMemory(now)
	}, limitstest.Options{})
}

func TestMemorySweepsIdleKeys(t *testing.T) {
	clk := testclock.New(time.Unix(1_900_000_000, 0))
	m := limits.NewMemory(clk.Now)
	ctx := context.Background()
	w := limits.PerMinute(3)
	g := limits.Limit{Policy: limits.GCRA, N: 3, Window: time.Minute}
	for i := range 5000 {
		key := string(rune('a'+i%26)) + string(rune(i))
		if _, err := m.Allow(ctx, key, w); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Allow(ctx, key, g); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	for range 2048 {
		if _, err := m.Allow(ctx, "live", w); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Keys(); n > 2 {
		t.Fatalf("%d keys kept after every window passed, want at most 2", n)
	}
}

func BenchmarkMemoryWindowAllow(b *testing.B) {
	clk := testclock.New(time.Unix(1_900_000_000, 0))
	m := limits.NewMemory(clk.Now)
	ctx := context.Background()
	l := limits.PerMinute(30)
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(2 * time.Second)
		if _, err := m.Allow(ctx, "msg:alice", l); err != nil {
			b.Fatal(err)
		}
	}
}
