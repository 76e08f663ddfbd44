package rtm_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/internal/testclock"
	"github.com/anchat/realtime/rtm"
	"github.com/anchat/realtime/rtm/rtmsim"
)

// TestMapping: each upstream type reaches the profile channel as its client
// event, through a real Redis bus, lease and store.
func TestMapping(t *testing.T) {
	e := newRedisEnv(t, rtmsim.Config{RequireCookie: true})
	n := e.start(e.config("n1"))
	o := e.observe(n.Bridge, "p1", "p2")
	if err := n.PutProfile(t.Context(), "p1", json.RawMessage(`{"cookies":{"sid":"s1","lang":"en"}}`)); err != nil {
		t.Fatal(err)
	}
	st := o.wait(t, 0, "rtm_status connected", isEvent("p1", rtm.EventStatus))
	if st.raw != `{"profileId":"p1","state":"connected"}` {
		t.Fatalf("first rtm_status %s", st.raw)
	}
	c := e.sim.Connections("p1")
	if len(c) != 1 || c[0].Status != 101 || c[0].Cookie != "lang=en; sid=s1" {
		t.Fatalf("upstream connections: %+v", c)
	}

	tests := []struct {
		typ, data string
		event     string
		want      string
	}{
		{rtmsim.MessageSent, `{"dialogId":"d1","messageId":"m1","fromId":"u1","text":"hi","createdAt":"2025-01-01T00:00:00Z"}`,
			rtm.EventMessageToast, `{"profileId":"p1","dialogId":"d1","messageId":"m1","fromId":"u1","text":"hi","createdAt":"2025-01-01T00:00:00Z"}`},
		{rtmsim.MessageRead, `{"dialogId":"d1","messageId":"m1","readAt":"2025-01-01T00:00:01Z"}`,
			rtm.EventMessageRead, `{"profileId":"p1","dialogId":"d1","messageId":"m1","readAt":"2025-01-01T00:00:01Z"}`},
		{rtmsim.DialogLimitChanged, `{"dialogId":"d1","limit":50,"remaining":49}`,
			rtm.EventDialogLimitChanged, `{"profileId":"p1","dialogId":"d1","limit":50,"remaining":49}`},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			from := len(o.all())
			emitTo(t, e.sim, rtmsim.Event{Type: tt.typ, ProfileID: "p1", Data: json.RawMessage(tt.data)})
			g := o.wait(t, from, tt.event, func(g got) bool { return g.event != rtm.EventStatus })
			if g.event != tt.event || g.raw != tt.want || g.profile != "p1" {
				t.Fatalf("got %s %s on %s\nwant %s %s", g.event, g.raw, g.profile, tt.event, tt.want)
			}
		})
	}

	t.Run("nothing for the profile's own message, unknown types or malformed frames", func(t *testing.T) {
		from := len(o.all())
		emitTo(t, e.sim, sentMessage("p1", "", "own1", "p1"))
		emitTo(t, e.sim, rtmsim.Event{Type: rtmsim.MessageSent, ProfileID: "p1",
			Data: json.RawMessage(`{"dialogId":"d1","messageId":"own2","fromId":"u5","outgoing":true}`)})
		emitTo(t, e.sim, rtmsim.Event{Type: "TypingStarted", ProfileID: "p1", Data: json.RawMessage(`{"dialogId":"d1"}`)})
		if e.sim.EmitRaw("p1", `{"id":`) != 1 || e.sim.EmitRaw("p1", `{"id":"x","type":"MessageRead","data":{}}`) != 1 {
			t.Fatal("raw emit not delivered")
		}
		emitTo(t, e.sim, sentMessage("p1", "", "marker", "u1"))
		o.wait(t, from, "the marker toast", isMessage("p1", "marker"))
		if got := o.all()[from:]; len(got) != 1 {
			t.Fatalf("deliveries %+v, want only the marker", got)
		}
		if open := openConns(e.sim, "p1"); len(open) != 1 || open[0].ID != c[0].ID {
			t.Fatalf("bad frames changed the connection: %+v", e.sim.Connections("p1"))
		}
		// The bridge counts a publication once Redis has answered its
		// PUBLISH, which the observer's subscription may beat: wait for the
		// count, then hold every figure to its exact value.
		eventually(t, 5*time.Second, "4 events out", func() bool {
			s, err := n.Stats(t.Context())
			return err == nil && s.EventsOut >= 4
		})
		s, err := n.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if s.EventsIn != 9 || s.EventsOut != 4 {
			t.Fatalf("stats in %d out %d, want 9 and 4", s.EventsIn, s.EventsOut)
		}
		m := gather(t, n.Bridge)
		for name, want := range map[string]float64{
			"realtime_rtm_events_in_total":                           9,
			"realtime_rtm_events_out_total":                          4,
			"realtime_rtm_events_ignored_total{reason=own_message}":  2,
			"realtime_rtm_events_ignored_total{reason=unknown_type}": 1,
			"realtime_rtm_events_ignored_total{reason=malformed}":    2,
			"realtime_rtm_leader":                                    1,
			"realtime_rtm_profiles{state=connected}":                 1,
			"realtime_rtm_profiles{state=session_expired}":           0,
		} {
			if got, ok := m[name]; !ok || got != want {
				t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
			}
		}
	})
	if n := o.count(func(g got) bool { return g.profile == "p2" }); n != 0 {
		t.Fatalf("%d deliveries on another profile's channel", n)
	}
}

// gather collects a bridge's metrics as name{label=value} -> value.
func gather(t *testing.T, b *rtm.Bridge) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.Collectors()...)
	mfs := must.Get[[]*dto.MetricFamily](t)(reg.Gather())
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[name] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// TestDedupe: two bridges that both hold a connection for p1 (two leases,
// one store, as an old and a new leader would) publish an upstream id once;
// an id seen again within the TTL is dropped too.
func TestDedupe(t *testing.T) {
	e := newRedisEnv(t, rtmsim.Config{})
	ca, cb := e.config("a"), e.config("b")
	ca.LeaseName, cb.LeaseName = "rtm-a", "rtm-b"
	a, b := e.start(ca), e.start(cb)
	o := e.observe(a.Bridge, "p1")
	if err := a.PutProfile(t.Context(), "p1", session1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "two upstream connections", func() bool { return len(openConns(e.sim, "p1")) == 2 })

	for i, id := range []string{"e1", "e1", "e2"} {
		if _, n, err := e.sim.Emit(sentMessage("p1", id, "m"+id, "u1")); err != nil || n != 2 {
			t.Fatalf("emit %d: delivered %d, %v", i, n, err)
		}
	}
	o.wait(t, 0, "toast e2", isMessage("p1", "me2"))
	time.Sleep(200 * time.Millisecond) // let any duplicate arrive
	if n := o.count(isMessage("p1", "me1")); n != 1 {
		t.Fatalf("e1 toasted %d times, want once", n)
	}
	if n := o.count(isMessage("p1", "me2")); n != 1 {
		t.Fatalf("e2 toasted %d times, want once", n)
	}
	sa, _ := a.Stats(t.Context())
	sb, _ := b.Stats(t.Context())
	if d := sa.DuplicatesDrop + sb.DuplicatesDrop; d != 4 {
		t.Fatalf("duplicates dropped %d, want 4 (6 frames, 2 ids)", d)
	}
	if ttl := e.client.TTL(t.Context(), e.prefix+":rtm:seen:2:p1:e1").Val(); ttl < 290*time.Second || ttl > 300*time.Second {
		t.Fatalf("dedupe key ttl %v, want 5 minutes", ttl)
	}
}

// TestDedupeExpires: with the memory store and an injected clock, an id is
// published again once DedupeTTL has passed.
func TestDedupeExpires(t *testing.T) {
	e := newMemoryEnv(t, rtmsim.Config{})
	clock := testclock.Real()
	e.memStore = rtm.NewMemoryStore(clock.Now)
	n := e.start(e.config("n1"))
	o := e.observe(n.Bridge, "p1")
	if err := n.PutProfile(t.Context(), "p1", session1); err != nil {
		t.Fatal(err)
	}
	emitTo(t, e.sim, sentMessage("p1", "e1", "m1", "u1"))
	o.wait(t, 0, "first toast", isMessage("p1", "m1"))
	emitTo(t, e.sim, sentMessage("p1", "e1", "m1", "u1"))
	eventually(t, 5*time.Second, "the duplicate dropped", func() bool {
		s, _ := n.Stats(t.Context())
		return s.DuplicatesDrop == 1
	})
	clock.Advance(5*time.Minute + time.Second)
	emitTo(t, e.sim, sentMessage("p1", "e1", "m1", "u1"))
	eventually(t, 5*time.Second, "the replay after 5 minutes", func() bool { return o.count(isMessage("p1", "m1")) == 2 })
	time.Sleep(100 * time.Millisecond)
	if c := o.count(isMessage("p1", "m1")); c != 2 {
		t.Fatalf("%d toasts, want 2 (the duplicate inside the window dropped)", c)
	}
}

func TestPutProfileValidation(t *testing.T) {
	e := newMemoryEnv(t, rtmsim.Config{})
	cfg := e.config("n1")
	b, err := rtm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, s := range []string{`{}`, `{"cookies":{"a":"b\r\nX: y"}}`, `{"cookies":""}`, `"a=b"`, `{"cookies":[1]}`} {
		if err := b.PutProfile(ctx, "p1", json.RawMessage(s)); !errors.Is(err, rtm.ErrBadSession) {
			t.Errorf("PutProfile(%s) = %v, want ErrBadSession", s, err)
		}
	}
	for _, id := range []string{"", "a b", "{x}"} {
		if err := b.PutProfile(ctx, id, session1); !errors.Is(err, rtm.ErrBadProfileID) {
			t.Errorf("PutProfile(%q) = %v, want ErrBadProfileID", id, err)
		}
	}
	if err := b.PutProfile(ctx, "p1", json.RawMessage(` { "cookies" : "a=b; c=d" } `)); err != nil {
		t.Fatal(err)
	}
	all, _ := e.memStore.Sessions(ctx)
	if string(all["p1"].Data) != `{"cookies":"a=b; c=d"}` {
		t.Fatalf("stored %s", all["p1"].Data)
	}
	bad := []func(*rtm.Config){
		func(c *rtm.Config) { c.NodeID = "" },
		func(c *rtm.Config) { c.URL = "http://x/ws" },
		func(c *rtm.Config) { c.Lease = nil },
		func(c *rtm.Config) { c.Store = nil },
		func(c *rtm.Config) { c.Bus = nil },
		func(c *rtm.Config) { c.RenewInterval = c.LeaseTTL },
	}
	for i, mod := range bad {
		c := e.config("n1")
		mod(&c)
		if _, err := rtm.New(c); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}

// TestAcceptTerms: Accept unwraps the envelope, drops an older term once a
// newer one was seen, and ignores non-RTM events.
func TestAcceptTerms(t *testing.T) {
	e := newMemoryEnv(t, rtmsim.Config{})
	b, err := rtm.New(e.config("n1"))
	if err != nil {
		t.Fatal(err)
	}
	d := func(event, data string) bus.Delivery {
		return bus.Delivery{Channel: bus.Profile("p1"), Event: event, Data: json.RawMessage(data)}
	}
	steps := []struct {
		d    bus.Delivery
		ok   bool
		data string
	}{
		{d(rtm.EventMessageToast, `{"term":3,"data":{"a":1}}`), true, `{"a":1}`},
		{d(rtm.EventMessageRead, `{"term":2,"data":{"a":2}}`), false, ""},
		{d(rtm.EventStatus, `{"term":3,"data":{"a":3}}`), true, `{"a":3}`},
		{d(rtm.EventDialogLimitChanged, `{"term":5,"data":{"a":4}}`), true, `{"a":4}`},
		{d(rtm.EventMessageToast, `{"term":4,"data":{"a":5}}`), false, ""},
		{d("new_message", `{"term":9,"data":{}}`), false, ""},
		{d(rtm.EventMessageToast, `{"a":1}`), false, ""},
		{d(rtm.EventMessageToast, `{"term":5,"data":{"a":6}}`), true, `{"a":6}`},
	}
	for i, s := range steps {
		event, data, ok := b.Accept(s.d)
		if ok != s.ok || string(data) != s.data || (ok && event != s.d.Event) {
			t.Errorf("step %d: Accept = %q %s %v, want %s %v", i, event, data, ok, s.data, s.ok)
		}
	}
	st, _ := b.Stats(t.Context())
	if st.StaleTermsDrop != 2 {
		t.Fatalf("StaleTermsDrop = %d, want 2", st.StaleTermsDrop)
	}
}
