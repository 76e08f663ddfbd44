package node

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func scrapeBody(t *testing.T, n *Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func sampleCount(h prometheus.Observer) uint64 {
	var m dto.Metric
	_ = h.(prometheus.Metric).Write(&m)
	return m.GetHistogram().GetSampleCount()
}

// TestLatencySeriesExistAtStart: before any traffic, /metrics has the
// fan-out histogram, a handler histogram per event, every event-error
// series (event × code), the accepted counter,
// build info, and the collectors the caller passed.
func TestLatencySeriesExistAtStart(t *testing.T) {
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "realtime_test_extra_total", Help: "x"})
	n := startNode(t, func(c *Config) {
		c.Version = "v1.2.3-test"
		c.Collectors = []prometheus.Collector{extra}
	})
	body := scrapeBody(t, n)
	want := []string{
		"realtime_send_fanout_seconds_count 0",
		"realtime_connections_accepted_total 0",
		`realtime_build_info{go="` + runtime.Version() + `",version="v1.2.3-test"} 1`,
		"realtime_test_extra_total 0",
	}
	for _, ev := range handledEventLabels.values {
		want = append(want, `realtime_handler_seconds_count{event="`+ev+`"} 0`)
	}
	for _, ev := range clientEventLabels.values {
		for _, code := range codeLabels.values {
			want = append(want, `realtime_event_errors_total{code="`+code+`",event="`+ev+`"} 0`)
		}
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
}

// TestSendMovesFanoutHistogram sends real messages on a real node, on the
// memory engines and on the Redis bus (the event comes back through Redis
// pub/sub): the fan-out histogram counts each send once, the handler
// histogram counts the events, the accepted counter the two connections,
// and the fan-out clock keeps nothing.
func TestSendMovesFanoutHistogram(t *testing.T) {
	for _, engine := range []string{"memory", "redis"} {
		t.Run(engine, func(t *testing.T) {
			n := startNode(t, func(c *Config) {
				if engine == "redis" {
					c.Engines, _ = redisEngines(t, 1)
				}
			})
			m := n.srv.metrics
			a := connect(t, n.Addr().String(), token(t, "fa", time.Hour, nil))
			b := connect(t, n.Addr().String(), token(t, "fb", time.Hour, nil))
			for _, c := range []*testClient{a, b} {
				c.emit("join_chat", map[string]string{"chatId": "fan"}, true)
			}
			const sends = 5
			for i := range sends {
				var ack struct{ OK bool }
				mustJSON(t, a.emit("send_message", map[string]any{"chatId": "fan", "content": "x", "messageType": "TEXT", "tempId": itoa(i)}, true), &ack)
				if !ack.OK {
					t.Fatal("send refused")
				}
				b.waitEvent("new_message", 5*time.Second)
			}
			// dispatch observes the handler's time after the handler has
			// sent the ack the client waited for: wait for both counts.
			deadline := time.Now().Add(5 * time.Second)
			for (sampleCount(m.sendFanout) != sends || sampleCount(m.handlerSeconds.byName[evSendMessage]) != sends) &&
				time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := sampleCount(m.sendFanout); got != sends {
				t.Errorf("fan-out histogram counted %d sends, want %d", got, sends)
			}
			if got := sampleCount(m.handlerSeconds.byName[evSendMessage]); got != sends {
				t.Errorf("handler histogram counted %d send_message, want %d", got, sends)
			}
			if got := sampleCount(m.handlerSeconds.byName[evJoinChat]); got != 2 {
				t.Errorf("handler histogram counted %d join_chat, want 2", got)
			}
			if got := counterValue(m.accepted); got != 2 {
				t.Errorf("accepted %v connections, want 2", got)
			}
			if left := n.srv.fanout.active.Load(); left != 0 {
				t.Errorf("the fan-out clock still tracks %d sends", left)
			}
		})
	}
}

// TestFanoutClockEitherOrder: the fan-out may come before the append
// returns its id, or after; both are observed once, from the dispatch.
// A failed append and a fan-out nobody waits for leave nothing behind.
func TestFanoutClockEitherOrder(t *testing.T) {
	var got []time.Duration
	f := newFanoutClock(func(d time.Duration) { got = append(got, d) })
	t0 := time.Now()

	f.begin("c")
	f.fannedOutAt("c", "1-0", t0.Add(3*time.Millisecond)) // the bus was faster than the reply
	f.fannedOutAt("c", "2-0", t0.Add(4*time.Millisecond)) // someone else's message
	f.appended("c", "1-0", t0)

	f.begin("c")
	f.appended("c", "3-0", t0)
	f.fannedOutAt("c", "3-0", t0.Add(5*time.Millisecond))

	f.begin("c")
	f.appended("c", "", t0) // refused: nothing appended

	f.fannedOutAt("c", "4-0", t0) // no send in flight: ignored

	if len(got) != 2 || got[0] != 3*time.Millisecond || got[1] != 5*time.Millisecond {
		t.Errorf("observed %v, want [3ms 5ms]", got)
	}
	if f.active.Load() != 0 || len(f.waiting) != 0 || len(f.early) != 0 || len(f.appending) != 0 {
		t.Errorf("left behind: active %d, waiting %v, early %v, appending %v", f.active.Load(), f.waiting, f.early, f.appending)
	}

	// A send whose fan-out never comes is dropped after fanoutExpiry.
	f.begin("c")
	f.appended("c", "5-0", t0)
	f.expire(t0.Add(fanoutExpiry / 2))
	if f.active.Load() != 1 {
		t.Fatal("expired too early")
	}
	f.expire(t0.Add(2 * fanoutExpiry))
	if f.active.Load() != 0 || len(f.waiting) != 0 {
		t.Errorf("not expired: active %d, waiting %v", f.active.Load(), f.waiting)
	}
}

// TestFanoutClockEarlyIsBounded: a busy chat may never be without a send
// in its append, so the fan-outs remembered for it are capped (other
// nodes' messages, never claimed by a send here, would pile up), and a send
// takes its own entry when it finds it.
func TestFanoutClockEarlyIsBounded(t *testing.T) {
	var got []time.Duration
	f := newFanoutClock(func(d time.Duration) { got = append(got, d) })
	t0 := time.Now()
	f.begin("busy") // never ends: the chat always has an append in flight
	for i := range 10 * fanoutEarlyMax {
		f.fannedOutAt("busy", fmt.Sprint(i, "-0"), t0)
	}
	if n := len(f.early["busy"]); n > fanoutEarlyMax {
		t.Fatalf("%d fan-outs remembered for one chat, want at most %d", n, fanoutEarlyMax)
	}
	f.begin("busy")
	f.fannedOutAt("busy", "mine-0", t0.Add(time.Millisecond))
	f.appended("busy", "mine-0", t0)
	if len(got) != 1 || got[0] != time.Millisecond {
		t.Fatalf("observed %v, want [1ms]", got)
	}
	if _, ok := f.early["busy"]["mine-0"]; ok {
		t.Error("the send's own fan-out is still remembered after it was claimed")
	}
}

// TestObservingLatencyDoesNotAllocate: the handler histogram and the
// fan-out clock's per-delivery check add no allocation to the hot path.
func TestObservingLatencyDoesNotAllocate(t *testing.T) {
	h, f := latencyObservers()
	if a := testing.AllocsPerRun(1000, func() { observeLatency(h, f) }); a != 0 {
		t.Errorf("%v allocations per observation, want 0", a)
	}
}

// latencyObservers are the node's handler histogram and fan-out clock, on
// their own (no node running beside the measurement).
func latencyObservers() (*boundedHistograms, *fanoutClock) {
	h, _ := newBoundedHistograms(prometheus.HistogramOpts{Name: "h", Buckets: latencyBuckets}, "event", handledEventLabels)
	fanout := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "f", Buckets: latencyBuckets})
	return h, newFanoutClock(func(d time.Duration) { fanout.Observe(d.Seconds()) })
}

func observeLatency(h *boundedHistograms, f *fanoutClock) {
	start := time.Now()
	f.fannedOut("chat-42", "1700000000000-0")
	h.observe(evSendMessage, time.Since(start))
}

// BenchmarkObserveLatency is the cost the latency metrics add per event:
// one handler observation and the fan-out clock's check on a delivery.
func BenchmarkObserveLatency(b *testing.B) {
	h, f := latencyObservers()
	b.ReportAllocs()
	for b.Loop() {
		observeLatency(h, f)
	}
}

// BenchmarkFanoutClock is the fan-out clock's share of a send and of a
// delivery, run in parallel (go test -bench FanoutClock -cpu 1,2,8) to see
// whether its lock serialises the node's sends. One op is one send (begin,
// the fan-out of its event, before or after appended, alternately) and one
// delivery of another node's message to the same chat while the send is in
// flight. Each goroutine sends to a chat of its own (distinct), or all to
// one (shared); idle is a delivery with no send in flight anywhere.
func BenchmarkFanoutClock(b *testing.B) {
	for _, mode := range []string{"distinct", "shared"} {
		b.Run("chats="+mode, func(b *testing.B) {
			f := newFanoutClock(func(time.Duration) {})
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				chat := "chat-shared"
				if mode == "distinct" {
					chat = fmt.Sprint("chat-", next.Add(1))
				}
				ids := make([]string, 1024)
				for i := range ids {
					ids[i] = fmt.Sprint(1700000000000+i, "-", next.Add(1))
				}
				received := time.Now()
				for i := 0; pb.Next(); i++ {
					id := ids[i%len(ids)]
					f.begin(chat)
					f.fannedOut(chat, "other-0") // another node's message
					if i%2 == 0 {
						f.fannedOut(chat, id) // the bus was faster than the append's reply
						f.appended(chat, id, received)
					} else {
						f.appended(chat, id, received)
						f.fannedOut(chat, id)
					}
				}
			})
		})
	}
	b.Run("idle", func(b *testing.B) {
		f := newFanoutClock(func(time.Duration) {})
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				f.fannedOut("chat-42", "1700000000000-0")
			}
		})
	})
}
