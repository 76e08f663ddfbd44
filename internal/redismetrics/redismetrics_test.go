package redismetrics_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/redismetrics"
	"github.com/anchat/realtime/internal/redisscript"
	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/lease"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/rtm"
)

// scrape gathers m's families: command counts by op, errors by op and class.
func scrape(t *testing.T, m *redismetrics.Metrics) (counts map[string]uint64, errs map[[2]string]float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	mfs := must.Get[[]*dto.MetricFamily](t)(reg.Gather())
	counts, errs = map[string]uint64{}, map[[2]string]float64{}
	label := func(mt *dto.Metric, name string) string {
		for _, l := range mt.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			switch mf.GetName() {
			case "realtime_redis_command_seconds":
				counts[label(mt, "op")] = mt.GetHistogram().GetSampleCount()
			case "realtime_redis_errors_total":
				errs[[2]string{label(mt, "op"), label(mt, "class")}] = mt.GetCounter().GetValue()
			}
		}
	}
	return counts, errs
}

func TestEverySeriesExistsAtStart(t *testing.T) {
	counts, errs := scrape(t, redismetrics.New())
	if len(counts) != len(redismetrics.Ops) || len(errs) != len(redismetrics.Ops)*len(redismetrics.Classes) {
		t.Fatalf("%d latency and %d error series at start, want %d and %d",
			len(counts), len(errs), len(redismetrics.Ops), len(redismetrics.Ops)*len(redismetrics.Classes))
	}
}

// TestEnginesCommandsHaveTheirOp runs every Redis engine on a measured
// client against a real server: each operation lands under its op, nothing
// under other, and no error is counted.
func TestEnginesCommandsHaveTheirOp(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	m := redismetrics.New()
	c.AddHook(m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prefix := redistest.Prefix(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(redisscript.LoadAll(ctx, c))
	must(c.Ping(ctx).Err())

	b, err := bus.NewRedis(c, bus.RedisConfig{Prefix: prefix, Logger: zerolog.Nop()})
	must(err)
	defer b.Close()
	got := make(chan bus.Delivery, 4)
	must(b.Start(func(d bus.Delivery) { got <- d }))
	must(b.Subscribe(ctx, bus.Chat("c1")))
	res, err := b.Append(ctx, "c1", bus.Op{Kind: bus.OpSend, UserID: "u1", Event: "new_message", Data: json.RawMessage(`{"content":"hi"}`)})
	must(err)
	<-got
	_, _, err = b.Since(ctx, "c1", res.EventID, 10)
	must(err)
	must(b.Publish(ctx, bus.Chat("c1"), "user_typing", json.RawMessage(`{}`)))
	// The typing publish with its limit folded in is a publish, not an
	// append, though it is a script of the bus too.
	before, _ := scrape(t, m)
	_, err = b.PublishLimited(ctx, bus.Chat("c1"), "user_typing", json.RawMessage(`{}`),
		bus.WindowLimit{Key: prefix + ":{lim:typing:u1}", Now: 1_000_000, Cutoff: 0, Window: 60_000_000, N: 10, Member: "m1"})
	must(err)
	after, _ := scrape(t, m)
	if after[redismetrics.OpPublish] != before[redismetrics.OpPublish]+1 || after[redismetrics.OpAppend] != before[redismetrics.OpAppend] {
		t.Errorf("PublishLimited: publish %d → %d, append %d → %d; want one more publish, no append",
			before[redismetrics.OpPublish], after[redismetrics.OpPublish], before[redismetrics.OpAppend], after[redismetrics.OpAppend])
	}

	p, err := presence.NewRedis(c, presence.RedisConfig{Prefix: prefix, NodeID: "n1"})
	must(err)
	_, err = p.Acquire(ctx, "u1", "conn1", 3)
	must(err)
	must(p.SetChats(ctx, []string{"c1"}))
	must(p.Refresh(ctx))
	_, err = p.Stats(ctx)
	must(err)
	must(p.Release(ctx, "u1", "conn1"))
	must(p.Close())

	ms, err := membership.NewRedis(c, membership.RedisConfig{Prefix: prefix})
	must(err)
	_, err = ms.Add(ctx, "c1", "u1")
	must(err)
	_, err = ms.IsMember(ctx, "c1", "u1")
	must(err)
	_, err = ms.Members(ctx, "c1")
	must(err)
	_, err = ms.Remove(ctx, "c1", "u1")
	must(err)

	l, err := limits.NewRedis(c, limits.RedisConfig{Prefix: prefix})
	must(err)
	_, err = l.Allow(ctx, "message:u1", limits.PerMinute(10))
	must(err)
	_, err = l.Allow(ctx, "connect:1.2.3.4", limits.Limit{Policy: limits.GCRA, N: 10, Window: time.Minute})
	must(err)

	ls, err := lease.NewRedis(c, lease.RedisConfig{Prefix: prefix})
	must(err)
	term, ok, err := ls.TryAcquire(ctx, "rtm", "n1", time.Minute)
	must(err)
	if !ok {
		t.Fatal("lease not acquired")
	}
	_, err = ls.Renew(ctx, "rtm", term, time.Minute)
	must(err)
	_, _, err = ls.Holder(ctx, "rtm")
	must(err)
	must(ls.Release(ctx, "rtm", term))

	st, err := rtm.NewRedisStore(c, rtm.RedisStoreConfig{Prefix: prefix})
	must(err)
	must(st.PutSession(ctx, "p1", json.RawMessage(`{"cookie":"x"}`)))
	_, err = st.Sessions(ctx)
	must(err)
	must(st.SetState(ctx, "p1", rtm.State("connected")))
	_, err = st.MarkSeen(ctx, "e1", time.Minute)
	must(err)
	must(st.DeleteSession(ctx, "p1"))

	counts, errs := scrape(t, m)
	for _, op := range redismetrics.Ops {
		switch op {
		case redismetrics.OpOther:
			if counts[op] != 0 {
				t.Errorf("%d round trips counted as other: the op table misses an engine command", counts[op])
			}
		default:
			if counts[op] == 0 {
				t.Errorf("no round trip counted under op %q", op)
			}
		}
	}
	for k, v := range errs {
		if v != 0 {
			t.Errorf("%v errors counted for %v on a healthy server", v, k)
		}
	}
	t.Logf("round trips by op: %v", counts)
}

// TestErrorsByClass meets each class on a real server: an error reply, a
// failing script, a server that stops answering (timeout) and one that is
// gone (unavailable). NOSCRIPT, which go-redis answers by sending the
// script again, is no error.
func TestErrorsByClass(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialerRetries: 1,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond})
	defer c.Close()
	m := redismetrics.New()
	c.AddHook(m)
	ctx := context.Background()

	_ = c.Set(ctx, "k", "v", 0).Err()
	if err := c.SAdd(ctx, "k", "x").Err(); err == nil {
		t.Fatal("SADD on a string succeeded")
	}
	failing := redisscript.New("return redis.call('SADD', KEYS[1], 'x')")
	if err := failing.Run(ctx, c, []string{"k"}).Err(); err == nil {
		t.Fatal("the failing script succeeded")
	}
	_, errs := scrape(t, m)
	if errs[[2]string{redismetrics.OpMembership, redismetrics.ClassOther}] != 1 {
		t.Errorf("WRONGTYPE not counted as membership/other: %v", errs)
	}
	// The script is this test package's: op other. Its NOSCRIPT first try
	// is not an error; its failure is one script error.
	if got := errs[[2]string{redismetrics.OpOther, redismetrics.ClassScript}]; got != 1 {
		t.Errorf("%v script errors, want 1 (NOSCRIPT must not count)", got)
	}

	srv.Pause()
	err := c.Ping(ctx).Err()
	srv.Resume()
	if err == nil {
		t.Fatal("PING answered by a stopped server")
	}
	_, errs = scrape(t, m)
	if errs[[2]string{redismetrics.OpPing, redismetrics.ClassTimeout}] != 1 {
		t.Errorf("a PING to a stopped process is not one ping/timeout: %v (%v)", errs, err)
	}

	srv.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered by a dead server")
	}
	_, errs = scrape(t, m)
	if errs[[2]string{redismetrics.OpPing, redismetrics.ClassUnavailable}] != 1 {
		t.Errorf("a PING to a dead server is not one ping/unavailable: %v", errs)
	}
}

// TestObserveDoesNotAllocate: timing a command adds no allocation to it.
func TestObserveDoesNotAllocate(t *testing.T) {
	m := redismetrics.New()
	ctx := context.Background()
	cmd := redis.NewCmd(ctx, "evalsha", "0123456789abcdef", 1, "k")
	hook := m.ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	pipe := m.ProcessPipelineHook(func(context.Context, []redis.Cmder) error { return nil })
	cmds := []redis.Cmder{redis.NewCmd(ctx, "multi"), redis.NewCmd(ctx, "zrem", "k", "m"), redis.NewCmd(ctx, "exec")}
	if n := testing.AllocsPerRun(1000, func() { _ = hook(ctx, cmd); _ = pipe(ctx, cmds) }); n != 0 {
		t.Errorf("%v allocations per observed command and pipeline, want 0", n)
	}
}

// BenchmarkObserve is the hook's cost per command, around a no-op command.
func BenchmarkObserve(b *testing.B) {
	m := redismetrics.New()
	ctx := context.Background()
	cmd := redis.NewCmd(ctx, "xrevrange", "k", "+", "-")
	hook := m.ProcessHook(func(context.Context, redis.Cmder) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		_ = hook(ctx, cmd)
	}
}

// TestUnknownCommandsStayBounded: commands and scripts the table does not
// know, failing or not, count under op other and create no series.
func TestUnknownCommandsStayBounded(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	m := redismetrics.New()
	c.AddHook(m)
	ctx := context.Background()
	if err := c.Do(ctx, "ECHO", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "MADE-UP-COMMAND", "x").Err(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	if err := c.Eval(ctx, "return 1", nil).Err(); err != nil {
		t.Fatal(err)
	}
	counts, errs := scrape(t, m)
	if len(counts) != len(redismetrics.Ops) || len(errs) != len(redismetrics.Ops)*len(redismetrics.Classes) {
		t.Errorf("%d latency and %d error series: unknown commands created some", len(counts), len(errs))
	}
	if counts[redismetrics.OpOther] != 3 || errs[[2]string{redismetrics.OpOther, redismetrics.ClassOther}] != 1 {
		t.Errorf("other: %d round trips, %v errors; want 3 and 1", counts[redismetrics.OpOther], errs[[2]string{redismetrics.OpOther, redismetrics.ClassOther}])
	}
}
