package clustersuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/bus/bustest"
	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redisslot"
	"github.com/anchat/realtime/internal/redistest"
)

// nodeClient is a cluster client configured as cmd/realtime configures its
// own (engines.go): fail fast, no command retries or redirects, slot map
// reloaded at least every second.
func nodeClient(t testing.TB, cl *redistest.Cluster) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                      cl.Addrs(),
		ClusterStateReloadInterval: time.Second,
		MaxRedirects:               -1,
		MaxRetries:                 -1,
		DialerRetries:              1,
		DialTimeout:                time.Second,
		ReadTimeout:                time.Second,
		WriteTimeout:               time.Second,
		PoolTimeout:                time.Second,
	})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// sent is one acknowledged send.
type sent struct {
	n       int
	eventID string
}

// TestBusFailover SIGKILLs the master of a chat's slot while nodes send to
// chats on every master: each send is answered within 2 s (ok or
// UNAVAILABLE), the replica is promoted, the subscriber's sharded
// subscription comes back on the new master, and gap repair fills what pub/sub
// lost: every event the promoted master holds is delivered once, in order,
// and no send is stored twice.
func TestBusFailover(t *testing.T) {
	cl := redistest.StartRealCluster(t, redistest.ClusterOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	prefix := redistest.Prefix(t)
	sender := newBroker(t, nodeClient(t, cl), bus.RedisConfig{Prefix: prefix})
	receiver := newBroker(t, nodeClient(t, cl), bus.RedisConfig{Prefix: prefix, ProbeInterval: 200 * time.Millisecond})
	var rec bustest.Recorder
	if err := receiver.Start(rec.Handle); err != nil {
		t.Fatal(err)
	}
	// Two chats on every master.
	perMaster := map[string]int{}
	var chats []string
	for i := 0; len(chats) < 6; i++ {
		id := fmt.Sprintf("%s-%d", bustest.ChatID(t), i)
		m := must.Get[*redistest.Server](t)(cl.MasterOf(ctx, receiver.ChannelName(bus.Chat(id))))
		if perMaster[m.Addr()] < 2 {
			perMaster[m.Addr()]++
			chats = append(chats, id)
		}
	}
	for _, id := range chats {
		if err := receiver.Subscribe(ctx, bus.Chat(id)); err != nil {
			t.Fatal(err)
		}
	}
	victim := must.Get[*redistest.Server](t)(cl.MasterOf(ctx, receiver.ChannelName(bus.Chat(chats[0]))))
	traffic := startTraffic(t, ctx, sender, chats)
	time.Sleep(time.Second)
	t.Logf("killing master %s (owns chat 0)", victim.Addr())
	killed := time.Now()
	victim.Kill()
	if err := cl.WaitOK(ctx); err != nil {
		t.Fatalf("%v\n%s", err, cl.Describe())
	}
	t.Logf("cluster ok again after %v", time.Since(killed).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	traffic.stopAndCheck(t, ctx, sender, &rec)
}

// TestBusSlotMoved migrates the slot of a chat to another master mid-traffic:
// Redis drops the slot's shard subscriptions (SUNSUBSCRIBE), and the
// subscriber resubscribes on the new owner and repairs the gap.
func TestBusSlotMoved(t *testing.T) {
	cl := redistest.StartRealCluster(t, redistest.ClusterOptions{Replicas: -1})
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	prefix := redistest.Prefix(t)
	sender := newBroker(t, nodeClient(t, cl), bus.RedisConfig{Prefix: prefix})
	receiver := newBroker(t, nodeClient(t, cl), bus.RedisConfig{Prefix: prefix})
	var rec bustest.Recorder
	if err := receiver.Start(rec.Handle); err != nil {
		t.Fatal(err)
	}
	chats := []string{bustest.ChatID(t) + "-0", bustest.ChatID(t) + "-1"}
	for _, id := range chats {
		if err := receiver.Subscribe(ctx, bus.Chat(id)); err != nil {
			t.Fatal(err)
		}
	}
	name := receiver.ChannelName(bus.Chat(chats[0]))
	from := must.Get[*redistest.Server](t)(cl.MasterOf(ctx, name))
	to := cl.Nodes[0]
	if to == from {
		to = cl.Nodes[1]
	}
	traffic := startTraffic(t, ctx, sender, chats)
	time.Sleep(time.Second)
	slot := int(redisslot.Of(name))
	t.Logf("moving slot %d from %s to %s", slot, from.Addr(), to.Addr())
	if err := cl.MoveSlot(ctx, slot, to); err != nil {
		t.Fatal(err)
	}
	if m := must.Get[*redistest.Server](t)(cl.MasterOf(ctx, name)); m != to {
		t.Fatalf("slot still on %s", m.Addr())
	}
	time.Sleep(2 * time.Second)
	traffic.stopAndCheck(t, ctx, sender, &rec)
	// The subscription lives on the new owner: poll, a loaded machine may
	// take a few probe intervals to resubscribe.
	var v map[string]int64
	polled := time.Now()
	for deadline := polled.Add(20 * time.Second); ; {
		v = must.Get[map[string]int64](t)(to.Client().PubSubShardNumSub(ctx, name).Result())
		if v[name] == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v[name] != 1 {
		t.Errorf("SHARDNUMSUB on the new owner = %d within 20 s, want 1", v[name])
	}
	t.Logf("subscribed on the new owner %v after the checks", time.Since(polled).Round(time.Millisecond))
}

// traffic is one sender per chat, one send at a time, until stopped.
type traffic struct {
	chats       []string
	stop        chan struct{}
	wg          sync.WaitGroup
	acked       [][]sent
	unavailable []int
	mu          sync.Mutex // guards slowest
	slowest     time.Duration
}

func startTraffic(t *testing.T, ctx context.Context, sender *bus.Redis, chats []string) *traffic {
	tr := &traffic{chats: chats, stop: make(chan struct{}), acked: make([][]sent, len(chats)), unavailable: make([]int, len(chats))}
	for i, id := range chats {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-tr.stop:
					return
				default:
				}
				actx, acancel := context.WithTimeout(ctx, 2*time.Second)
				start := time.Now()
				res, err := sender.Append(actx, id, bus.Op{Kind: bus.OpSend, UserID: "u", Event: "new_message",
					Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))})
				took := time.Since(start)
				acancel()
				tr.mu.Lock()
				tr.slowest = max(tr.slowest, took)
				tr.mu.Unlock()
				switch {
				case err == nil:
					tr.acked[i] = append(tr.acked[i], sent{n: n, eventID: res.EventID})
				case errors.Is(err, bus.ErrUnavailable):
					tr.unavailable[i]++
					time.Sleep(10 * time.Millisecond)
				default:
					t.Errorf("chat %d: send %d: %v", i, n, err)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return tr
}

// stopAndCheck stops the senders and checks: every send answered within
// 2 s; no send stored twice; every stored event delivered to rec once, in
// order; it logs how many acknowledged sends the cluster lost.
func (tr *traffic) stopAndCheck(t *testing.T, ctx context.Context, sender *bus.Redis, rec *bustest.Recorder) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	if tr.slowest > 2500*time.Millisecond {
		t.Errorf("slowest send answered after %v, want within 2 s", tr.slowest)
	}
	t.Logf("slowest send %v; UNAVAILABLE per chat %v", tr.slowest.Round(time.Millisecond), tr.unavailable)
	lost := 0
	for i, id := range tr.chats {
		// What the slot's (possibly new) master holds now.
		stored, _ := must2(t)(sender.Since(ctx, id, "", 0))
		seen := map[int]bool{}
		held := map[string]bool{}
		for _, e := range stored {
			var p struct{ N int }
			if err := json.Unmarshal(e.Data, &p); err != nil {
				t.Fatal(err)
			}
			if seen[p.N] {
				t.Errorf("chat %d: send %d stored twice", i, p.N)
			}
			seen[p.N] = true
			held[e.EventID] = true
		}
		for _, a := range tr.acked[i] {
			if !held[a.eventID] {
				lost++
			}
		}
		if len(tr.acked[i]) == 0 {
			t.Errorf("chat %d: no send succeeded", i)
		}
		deadline := time.Now().Add(20 * time.Second)
		var got []bus.Delivery
		for {
			got = rec.On(bus.Chat(id))
			delivered := map[string]bool{}
			for _, d := range got {
				delivered[d.EventID] = true
			}
			missing := 0
			for _, e := range stored {
				if !delivered[e.EventID] {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("chat %d: %d of %d stored events not delivered within 20 s", i, missing, len(stored))
			}
			time.Sleep(20 * time.Millisecond)
		}
		for j := 1; j < len(got); j++ {
			if bus.CompareIDs(got[j-1].EventID, got[j].EventID) >= 0 {
				t.Errorf("chat %d: delivery %d (%s) not after %s", i, j, got[j].EventID, got[j-1].EventID)
			}
		}
		t.Logf("chat %d: %d acked, %d stored, %d delivered", i, len(tr.acked[i]), len(stored), len(got))
	}
	t.Logf("acknowledged sends missing from the cluster (asynchronous replication): %d", lost)
}

func must2(t testing.TB) func([]bus.Event, bool, error) ([]bus.Event, bool) {
	return func(e []bus.Event, ok bool, err error) ([]bus.Event, bool) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return e, ok
	}
}
