package presence_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/presence"
)

// BenchmarkRedisStatsRound measures what one stats round costs Redis: each
// of 8 nodes calling Stats once (what every --stats-interval brings), with
// 50,000 users connected over 4 of them. It reports the server CPU of the
// round's scripts (INFO commandstats: usec of EVALSHA and EVAL) and how many
// scans ran (SUNIONSTORE calls), for Stats exact at every call and with the
// default StatsMaxAge (rounds closer together than 5 s share one scan).
//
//	go test -run '^$' -bench BenchmarkRedisStatsRound -benchtime 20x ./presence/
func BenchmarkRedisStatsRound(b *testing.B) {
	const users, holders, callers = 50_000, 4, 8
	for _, maxAge := range []time.Duration{0, presence.DefaultStatsMaxAge} {
		b.Run(fmt.Sprint("maxAge=", maxAge), func(b *testing.B) {
			s := redistest.Start(b, redistest.Options{})
			c := s.Client()
			ctx := b.Context()
			ps := make([]*presence.Redis, callers)
			for i := range ps {
				ps[i] = newRedis(b, c, presence.RedisConfig{NodeID: fmt.Sprint("n", i), StatsMaxAge: maxAge})
			}
			var wg sync.WaitGroup
			for w := range 32 {
				wg.Go(func() {
					for u := w; u < users; u += 32 {
						p := ps[u%holders]
						if _, err := p.Acquire(ctx, fmt.Sprint("user", u), fmt.Sprint("c", u), 3); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			for i, p := range ps[:holders] {
				if err := p.SetChats(ctx, []string{fmt.Sprint("chat", i), "general"}); err != nil {
					b.Fatal(err)
				}
			}
			if st := must.Get[presence.Stats](b)(ps[0].Stats(ctx)); st.Users != users {
				b.Fatalf("Stats = %+v, want %d users", st, users)
			}
			redistest.ResetStats(b, c)
			for b.Loop() {
				for _, p := range ps {
					if _, err := p.Stats(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			stats := redistest.CommandStats(b, c)
			usec := stats["evalsha"].Usec + stats["eval"].Usec
			b.ReportMetric(float64(usec)/float64(b.N), "redis-µs/round")
			b.ReportMetric(float64(stats["sunionstore"].Calls)/float64(b.N), "scans/round")
		})
	}
}
