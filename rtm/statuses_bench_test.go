package rtm

import (
	"fmt"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
)

// BenchmarkStatuses is the per-CONNECT read of a user's 3 profiles' states
// among 10,000 in the cluster, on a follower (Redis) and on the leader (its
// own maps). On the follower it also reports the bytes read from Redis
// (redis-B/op) and Redis's own CPU time (redis-us/op, INFO commandstats) per
// call:
//
//	go test -run x -bench Statuses -benchmem ./rtm
func BenchmarkStatuses(b *testing.B) {
	const others = 10_000
	asked := []string{"p1", "p2", "p3"}
	newBridge := func(b *testing.B, store Store) *Bridge {
		br, err := New(Config{NodeID: "n1", URL: "ws://127.0.0.1:1/ws", Lease: lease.NewMemory(nil),
			Bus: bus.NewMemory(bus.MemoryConfig{}), Store: store})
		if err != nil {
			b.Fatal(err)
		}
		return br
	}
	run := func(b *testing.B, br *Bridge) {
		b.ReportAllocs()
		for b.Loop() {
			st, err := br.Statuses(b.Context(), asked)
			if err != nil || len(st) != 2 {
				b.Fatalf("Statuses = %v, %v", st, err)
			}
		}
	}
	perOp := func(b *testing.B, v int64) float64 { return float64(v) / float64(b.N) }

	b.Run(fmt.Sprintf("follower/redis/%d", others), func(b *testing.B) {
		srv := redistest.Start(b, redistest.Options{})
		client, wire := srv.CountingClient()
		store, err := NewRedisStore(client, RedisStoreConfig{Prefix: redistest.Prefix(b)})
		if err != nil {
			b.Fatal(err)
		}
		fields := make([]any, 0, 2*others)
		for i := range others {
			fields = append(fields, fmt.Sprintf("other-%05d", i), string(StateConnected))
		}
		if err := client.HSet(b.Context(), store.state, fields...).Err(); err != nil {
			b.Fatal(err)
		}
		_ = store.SetState(b.Context(), "p1", StateConnected)
		_ = store.SetState(b.Context(), "p2", StateSessionExpired)
		br := newBridge(b, store)
		redistest.ResetStats(b, client)
		read := wire.Read()
		run(b, br)
		b.ReportMetric(perOp(b, wire.Read()-read), "redis-B/op")
		var usec int64
		for name, st := range redistest.CommandStats(b, client) {
			if name != "config|resetstat" {
				usec += st.Usec
			}
		}
		b.ReportMetric(perOp(b, usec), "redis-us/op")
	})

	b.Run(fmt.Sprintf("leader/%d", others), func(b *testing.B) {
		br := newBridge(b, NewMemoryStore(nil))
		br.leading.Store(true) // as lead does; the maps are what runBridge keeps
		since := time.Now()
		for i := range others {
			id := fmt.Sprintf("other-%05d", i)
			br.states[id] = StateConnected
			br.figures[id] = Figures{Since: since}
		}
		br.states["p1"], br.states["p2"] = StateConnected, StateSessionExpired
		run(b, br)
	})
}
