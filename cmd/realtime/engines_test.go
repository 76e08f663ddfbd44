package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/redismetrics"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/limits"
)

// TestRedisEnginesFoldTheLimits: on one Redis the engines count the typing
// limit inside the publish script (one round trip: the limit and the event
// together, nothing published when refused); on a Redis Cluster, where the
// limit's key and the chat are in different slots, they do not.
func TestRedisEnginesFoldTheLimits(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := redistest.Prefix(t)
	e := devEngines(t, "n1", "--redis-url", srv.URL(), "--redis-prefix", prefix)
	if e.AppendLimited == nil || e.PublishLimited == nil {
		t.Fatal("one Redis: AppendLimited or PublishLimited is nil, the limits take a round trip of their own")
	}
	ctx := context.Background()
	b := e.Bus.(*bus.Redis)
	ps := srv.Client().Subscribe(ctx, b.ChannelName(bus.Chat("c")))
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	lim := limits.Limit{Policy: limits.Window, N: 2, Window: time.Minute}
	for i := range 3 {
		allowed, retry, err := e.PublishLimited(ctx, bus.Chat("c"), "user_typing", json.RawMessage(`{"i":1}`), "typing:alice", lim)
		if err != nil {
			t.Fatalf("typing event %d: %v", i, err)
		}
		if want := i < 2; allowed != want || (!allowed && retry <= 0) {
			t.Fatalf("typing event %d: allowed %v retry %v, want allowed %v", i, allowed, retry, want)
		}
	}
	// The limiter's own check shares the budget.
	if res, err := e.Limiter.Allow(ctx, "typing:alice", lim); err != nil || res.Allowed {
		t.Fatalf("Limiter.Allow after two typing events in a budget of 2: %+v, %v", res, err)
	}
	for i := range 2 {
		m, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		t.Logf("published: %v", m)
	}
	if m, err := ps.ReceiveTimeout(ctx, 200*time.Millisecond); err == nil {
		t.Fatalf("the refused typing event was published: %v", m)
	}

	c := redistest.StartCluster(t)
	ce := devEngines(t, "n2", "--redis-cluster-addrs", c.Options().Addrs[0], "--redis-prefix", prefix)
	if ce.AppendLimited != nil || ce.PublishLimited != nil {
		t.Error("Redis Cluster: AppendLimited or PublishLimited is set, but the limit's key and the chat are in different slots")
	}
}

// devEngines builds the engines `realtime serve --dev args...` would run
// with, as node nodeID; they are closed when the test ends.
func devEngines(t *testing.T, nodeID string, args ...string) *engines {
	t.Helper()
	o, _, err := resolveArgs(t, env{}, append([]string{"--dev"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := buildEngines(o, nodeID, zerolog.Nop(), env{}.get, redismetrics.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}
