package rtm

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
)

// BenchmarkPeriodicReads compares, with 10,000 profiles stored, what the
// two periodic RTM reads cost Redis per call: a follower's count of the
// profiles by state for Stats (every node, every --stats-interval), whole
// state hash (before) against the counts kept beside it (now); and the
// idle leader's look at the sessions every ResyncInterval (5 s), whole
// sessions hash (before) against the version counter (now). It reports the
// bytes read from Redis (redis-B/op) and Redis's CPU time (redis-us/op,
// INFO commandstats) per call. It also compares a follower's page of 100
// profiles for the admin API: both hashes read whole (before) against the
// sorted ids (now); and the leader's recount of the states, which keeps
// those (once a term and every 12 ResyncIntervals).
//
//	go test -run '^$' -bench PeriodicReads ./rtm
func BenchmarkPeriodicReads(b *testing.B) {
	const profiles = 10_000
	srv := redistest.Start(b, redistest.Options{})
	client, wire := srv.CountingClient()
	ctx := b.Context()
	store, err := NewRedisStore(client, RedisStoreConfig{Prefix: redistest.Prefix(b)})
	if err != nil {
		b.Fatal(err)
	}
	session := json.RawMessage(`{"cookies":{"sid":"0123456789abcdef0123456789abcdef"}}`)
	for i := range profiles {
		id := fmt.Sprintf("profile-%05d", i)
		if err := store.PutSession(ctx, id, session); err != nil {
			b.Fatal(err)
		}
		if err := store.SetState(ctx, id, States[i%len(States)]); err != nil {
			b.Fatal(err)
		}
	}
	figures := make(map[string]Figures, profiles)
	for i := range profiles {
		figures[fmt.Sprintf("profile-%05d", i)] = Figures{Since: time.Now(), Reconnects: uint64(i)}
	}
	if err := store.SetFigures(ctx, figures); err != nil {
		b.Fatal(err)
	}
	if err := store.RecountStates(ctx); err != nil {
		b.Fatal(err)
	}
	measure := func(name string, read func(context.Context) (int, error), want int) {
		b.Run(name, func(b *testing.B) {
			redistest.ResetStats(b, client)
			before := wire.Read()
			for b.Loop() {
				if n, err := read(ctx); err != nil || n != want {
					b.Fatalf("%d, %v; want %d", n, err, want)
				}
			}
			// A script's time includes the commands it calls, which are
			// counted on their own too: count the script only.
			stats := redistest.CommandStats(b, client)
			usec := stats["evalsha"].Usec + stats["eval"].Usec
			if usec == 0 {
				for name, st := range stats {
					if name != "config|resetstat" {
						usec += st.Usec
					}
				}
			}
			b.ReportMetric(float64(wire.Read()-before)/float64(b.N), "redis-B/op")
			b.ReportMetric(float64(usec)/float64(b.N), "redis-us/op")
		})
	}
	measure("stats/state-hash", func(ctx context.Context) (int, error) {
		states, err := store.States(ctx)
		return len(countStates(states)), err
	}, len(States))
	measure("stats/state-counts", func(ctx context.Context) (int, error) {
		counts, err := store.StateCounts(ctx)
		return len(counts), err
	}, len(States))
	newFollower := func() *Bridge {
		br, err := New(Config{NodeID: "n1", URL: "ws://127.0.0.1:1/ws", Lease: lease.NewMemory(nil),
			Bus: bus.NewMemory(bus.MemoryConfig{}), Store: store})
		if err != nil {
			b.Fatal(err)
		}
		return br
	}
	measure("profiles-page/hashes", func(ctx context.Context) (int, error) {
		page, _, err := store.pageOfAll(ctx, "profile-05000", 100)
		return len(page), err
	}, 100)
	follower := newFollower()
	measure("profiles-page/ids", func(ctx context.Context) (int, error) {
		page, _, err := follower.Profiles(ctx, "profile-05000", 100)
		return len(page), err
	}, 100)
	measure("leader/recount", func(ctx context.Context) (int, error) {
		return 1, store.RecountStates(ctx)
	}, 1)
	measure("leader-idle/sessions", func(ctx context.Context) (int, error) {
		s, err := store.Sessions(ctx)
		return len(s), err
	}, profiles)
	measure("leader-idle/version", func(ctx context.Context) (int, error) {
		v, err := store.SessionsVersion(ctx)
		return int(min(v, 1)), err
	}, 1)
}
