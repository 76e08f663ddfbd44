package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/rtm"
)

// rtmBridge makes an rtm.Bridge a node RTM, as cmd/realtime's adapter does.
type rtmBridge struct{ *rtm.Bridge }

func (b rtmBridge) Statuses(ctx context.Context, profileIDs []string) (map[string]string, error) {
	st, err := b.Bridge.Statuses(ctx, profileIDs)
	out := make(map[string]string, len(st))
	for id, s := range st {
		out[id] = string(s)
	}
	return out, err
}

// TestConnectReadsOnlyTheUsersRTMStates: on a node that does not lead the
// RTM bridge, with 10,000 other profiles' states in Redis, each CONNECT
// sends rtm_status for the token's profiles that have a state, in the
// token's order, and costs Redis one HMGET of those profiles: never the
// whole state hash (an HGETALL per connect is O(cluster), which a client
// reconnecting in a loop turns into Redis and node load).
func TestConnectReadsOnlyTheUsersRTMStates(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	client := srv.Client()
	ctx := t.Context()
	prefix := redistest.Prefix(t)
	store, err := rtm.NewRedisStore(client, rtm.RedisStoreConfig{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	for batch := range 10 { // 10,000 other profiles
		fields := make([]any, 0, 2000)
		for i := range 1000 {
			fields = append(fields, fmt.Sprintf("other-%d-%03d", batch, i), string(rtm.StateConnected))
		}
		// The store's state hash (rtm.TestRedisStoreLayout pins its name).
		if err := client.HSet(ctx, prefix+":{rtm}:state", fields...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	_ = store.SetState(ctx, "p1", rtm.StateConnected)
	_ = store.SetState(ctx, "p2", rtm.StateSessionExpired)

	// Not Run: the bridge has not won the lease, as on any follower.
	broker := bus.NewMemory(bus.MemoryConfig{})
	t.Cleanup(func() { _ = broker.Close() })
	br, err := rtm.New(rtm.Config{NodeID: "n1", URL: "ws://127.0.0.1:1/ws", Lease: lease.NewMemory(nil), Bus: broker, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, func(c *Config) { c.RTM = rtmBridge{br} })
	tok := token(t, "u1", time.Hour, map[string]any{"profiles": []string{"p2", "p3", "p1"}})

	redistest.ResetStats(t, client)
	const connects = 3
	for range connects {
		c := connect(t, n.Addr().String(), tok)
		for _, want := range []string{`{"profileId":"p2","state":"session_expired"}`, `{"profileId":"p1","state":"connected"}`} {
			p := c.waitEvent(evRTMStatus, 5*time.Second)
			if got := string(p.data); got != want {
				t.Fatalf("rtm_status %s, want %s", got, want)
			}
		}
		_ = c.nc.Close()
	}
	calls := redistest.CommandCalls(t, client)
	// A connection the pool opens meanwhile says hello first: not a read.
	for _, c := range []string{"config|resetstat", "hello", "client|setinfo", "info", "ping"} {
		delete(calls, c)
	}
	if len(calls) != 1 || calls["hmget"] != connects {
		t.Errorf("%d connects ran %v on Redis; want %d hmget and nothing else", connects, calls, connects)
	}
}
