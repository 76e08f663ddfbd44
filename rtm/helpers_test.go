package rtm_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/leakcheck"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/rtm"
	"github.com/anchat/realtime/rtm/rtmsim"
	"github.com/anchat/realtime/rtm/rtmsim/rtmsimtest"
)

// env is one test's engines (memory or Redis) and simulator.
type env struct {
	t      *testing.T
	sim    *rtmsim.Server
	simURL string // ws://host:port/ws

	// Redis engines (nil redis for memory).
	redis  *redistest.Server
	client *redis.Client
	prefix string

	// Memory engines, shared by every bridge of the env.
	memLease *lease.Memory
	memStore *rtm.MemoryStore
	memBus   *bus.Memory
}

// newRedisEnv and newMemoryEnv check, when the test ends, that every
// goroutine the test's bridges, brokers and simulator started has ended.
func newRedisEnv(t *testing.T, simCfg rtmsim.Config) *env {
	leakcheck.Check(t)
	e := &env{t: t}
	sim := rtmsimtest.Start(t, simCfg)
	e.sim, e.simURL = sim.Server, sim.WSURL()
	e.redis = redistest.Start(t, redistest.Options{})
	e.client = e.redis.Client()
	e.prefix = redistest.Prefix(t)
	return e
}

func newMemoryEnv(t *testing.T, simCfg rtmsim.Config) *env {
	leakcheck.Check(t)
	e := &env{t: t}
	sim := rtmsimtest.Start(t, simCfg)
	e.sim, e.simURL = sim.Server, sim.WSURL()
	e.memLease = lease.NewMemory(nil)
	e.memStore = rtm.NewMemoryStore(nil)
	e.memBus = bus.NewMemory(bus.MemoryConfig{})
	t.Cleanup(func() { _ = e.memBus.Close() })
	return e
}

// crashLease wraps a lease; once crashed, Release does nothing, as if the
// process had died without releasing.
type crashLease struct {
	lease.Lease
	crashed atomic.Bool
}

func (c *crashLease) Release(ctx context.Context, name string, term lease.Term) error {
	if c.crashed.Load() {
		return nil
	}
	return c.Lease.Release(ctx, name, term)
}

// node is one bridge of the env.
type node struct {
	*rtm.Bridge
	id     string
	lease  *crashLease
	cancel context.CancelFunc
	done   chan struct{}
}

// stop cancels Run and waits for it (idempotent).
func (n *node) stop() {
	if n.cancel != nil {
		n.cancel()
		<-n.done
	}
}

// crash stops Run without releasing the lease.
func (n *node) crash() {
	n.lease.crashed.Store(true)
	n.stop()
}

// config returns a bridge config on the env's engines.
func (e *env) config(id string) rtm.Config {
	cfg := rtm.Config{NodeID: id, URL: e.simURL, LeaseTTL: 2 * time.Second}
	if e.redis == nil {
		cfg.Lease, cfg.Store, cfg.Bus = e.memLease, e.memStore, e.memBus
		return cfg
	}
	l, err := lease.NewRedis(e.client, lease.RedisConfig{Prefix: e.prefix})
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := bus.NewRedis(e.client, bus.RedisConfig{Prefix: e.prefix})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = b.Close() })
	cfg.Lease, cfg.Store, cfg.Bus = l, newRedisStore(e.t, e.client, e.prefix), b
	return cfg
}

// start builds a bridge from cfg (see config) and runs it.
func (e *env) start(cfg rtm.Config) *node {
	e.t.Helper()
	n := &node{id: cfg.NodeID, lease: &crashLease{Lease: cfg.Lease}}
	cfg.Lease = n.lease
	b, err := rtm.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	n.Bridge = b
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		if err := b.Run(ctx); err != nil {
			e.t.Errorf("Run: %v", err)
		}
	}()
	e.t.Cleanup(n.stop)
	return n
}

// got is one accepted delivery.
type got struct {
	profile, event string
	data           map[string]any
	raw            string
	at             time.Time
}

// observer subscribes a broker to profile channels and records what an
// Accept filter lets through, as a node would deliver it.
type observer struct {
	acc *rtm.Bridge
	mu  sync.Mutex
	got []got
}

// observe starts an observer on the env's bus (a new Redis broker, or the
// shared memory one) using acc's Accept.
func (e *env) observe(acc *rtm.Bridge, profiles ...string) *observer {
	e.t.Helper()
	o := &observer{acc: acc}
	var b bus.Broker = e.memBus
	if e.redis != nil {
		rb, err := bus.NewRedis(e.client, bus.RedisConfig{Prefix: e.prefix})
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { _ = rb.Close() })
		b = rb
	}
	if err := b.Start(o.deliver); err != nil {
		e.t.Fatal(err)
	}
	for _, p := range profiles {
		if err := b.Subscribe(e.t.Context(), bus.Profile(p)); err != nil {
			e.t.Fatal(err)
		}
	}
	return o
}

func (o *observer) deliver(d bus.Delivery) {
	event, data, ok := o.acc.Accept(d)
	if !ok {
		return
	}
	g := got{profile: d.Channel.ID, event: event, raw: string(data), at: time.Now()}
	_ = json.Unmarshal(data, &g.data)
	o.mu.Lock()
	o.got = append(o.got, g)
	o.mu.Unlock()
}

func (o *observer) all() []got {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]got(nil), o.got...)
}

// count counts accepted deliveries matching pred.
func (o *observer) count(pred func(got) bool) int {
	n := 0
	for _, g := range o.all() {
		if pred(g) {
			n++
		}
	}
	return n
}

// wait returns the first delivery at index >= from matching pred.
func (o *observer) wait(t *testing.T, from int, what string, pred func(got) bool) got {
	t.Helper()
	var found got
	eventually(t, 10*time.Second, what, func() bool {
		for _, g := range o.all()[min(from, len(o.all())):] {
			if pred(g) {
				found = g
				return true
			}
		}
		return false
	})
	return found
}

func isEvent(profile, event string) func(got) bool {
	return func(g got) bool { return g.profile == profile && g.event == event }
}

func isStatus(profile, state string) func(got) bool {
	return func(g got) bool {
		return g.profile == profile && g.event == rtm.EventStatus && g.data["state"] == state
	}
}

func isMessage(profile, messageID string) func(got) bool {
	return func(g got) bool {
		return g.profile == profile && g.event == rtm.EventMessageToast && g.data["messageId"] == messageID
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openConns returns the simulator's connection records of profile that
// were upgraded and are still open.
func openConns(s *rtmsim.Server, profile string) []rtmsim.Connection {
	var out []rtmsim.Connection
	for _, c := range s.Connections(profile) {
		if c.Status == 101 && c.ClosedAt == nil {
			out = append(out, c)
		}
	}
	return out
}

// emitTo injects an event once profile has an open connection.
func emitTo(t *testing.T, s *rtmsim.Server, e rtmsim.Event) string {
	t.Helper()
	var id string
	eventually(t, 10*time.Second, "an open connection for "+e.ProfileID, func() bool {
		var n int
		var err error
		id, n, err = s.Emit(e)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	return id
}

func sentMessage(profile, id, messageID, fromID string) rtmsim.Event {
	return rtmsim.Event{ID: id, Type: rtmsim.MessageSent, ProfileID: profile,
		Data: json.RawMessage(`{"dialogId":"d1","messageId":"` + messageID + `","fromId":"` + fromID + `","text":"hello","createdAt":"2025-01-01T00:00:00Z"}`)}
}

var session1 = json.RawMessage(`{"cookies":{"sid":"s1"}}`)
