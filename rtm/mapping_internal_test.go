package rtm

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 890e6, time.UTC)

func TestMapFrame(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		event string
		data  string // exact client payload
		err   error
	}{
		{
			name:  "MessageSent",
			frame: `{"id":"e1","type":"MessageSent","profileId":"p1","data":{"dialogId":"d1","messageId":"m1","fromId":"u1","text":"hi","createdAt":"2025-01-01T00:00:00Z"}}`,
			event: EventMessageToast,
			data:  `{"profileId":"p1","dialogId":"d1","messageId":"m1","fromId":"u1","text":"hi","createdAt":"2025-01-01T00:00:00Z"}`,
		},
		{
			name:  "MessageSent numeric ids, unix ms, no profileId",
			frame: `{"id":17,"type":"MessageSent","data":{"dialogId":5,"messageId":6,"fromId":7,"text":"x","createdAt":1735689600123}}`,
			event: EventMessageToast,
			data:  `{"profileId":"p1","dialogId":"5","messageId":"6","fromId":"7","text":"x","createdAt":"2025-01-01T00:00:00.123Z"}`,
		},
		{
			name:  "MessageSent defaults",
			frame: `{"id":"e1","type":"MessageSent","data":{"dialogId":"d1","messageId":"m1"}}`,
			event: EventMessageToast,
			data:  `{"profileId":"p1","dialogId":"d1","messageId":"m1","fromId":"","text":"","createdAt":"2025-03-04T05:06:07.890Z"}`,
		},
		{
			name:  "own message by fromId",
			frame: `{"id":"e1","type":"MessageSent","data":{"dialogId":"d1","messageId":"m1","fromId":"p1","text":"mine"}}`,
			err:   errOwnMessage,
		},
		{
			name:  "own message by outgoing",
			frame: `{"id":"e1","type":"MessageSent","data":{"dialogId":"d1","messageId":"m1","fromId":"u9","outgoing":true}}`,
			err:   errOwnMessage,
		},
		{
			name:  "MessageRead",
			frame: `{"id":"e2","type":"MessageRead","profileId":"p1","data":{"dialogId":"d1","messageId":"m1","readAt":"2025-01-01T00:00:01Z"}}`,
			event: EventMessageRead,
			data:  `{"profileId":"p1","dialogId":"d1","messageId":"m1","readAt":"2025-01-01T00:00:01Z"}`,
		},
		{
			name:  "DialogLimitChanged",
			frame: `{"id":"e3","type":"DialogLimitChanged","profileId":"p1","data":{"dialogId":"d1","limit":100,"remaining":0}}`,
			event: EventDialogLimitChanged,
			data:  `{"profileId":"p1","dialogId":"d1","limit":100,"remaining":0}`,
		},
		{
			name:  "DialogLimitChanged without remaining",
			frame: `{"id":"e3","type":"DialogLimitChanged","data":{"dialogId":"d1","limit":100}}`,
			err:   errMalformed,
		},
		{
			name:  "DialogLimitChanged fractional limit",
			frame: `{"id":"e3","type":"DialogLimitChanged","data":{"dialogId":"d1","limit":1.5,"remaining":1}}`,
			err:   errMalformed,
		},
		{
			name:  "unknown type",
			frame: `{"id":"e4","type":"TypingStarted","data":{"dialogId":"d1"}}`,
			err:   errUnknownType,
		},
		{
			name:  "unknown type without data",
			frame: `{"id":"e4","type":"Hello"}`,
			err:   errUnknownType,
		},
		{
			name:  "no id",
			frame: `{"type":"MessageRead","data":{"dialogId":"d1","messageId":"m1"}}`,
			err:   errMalformed,
		},
		{
			name:  "other profile",
			frame: `{"id":"e5","type":"MessageRead","profileId":"p2","data":{"dialogId":"d1","messageId":"m1"}}`,
			err:   errMalformed,
		},
		{
			name:  "missing messageId",
			frame: `{"id":"e5","type":"MessageRead","data":{"dialogId":"d1"}}`,
			err:   errMalformed,
		},
		{
			name:  "data not an object",
			frame: `{"id":"e5","type":"MessageSent","data":[1]}`,
			err:   errMalformed,
		},
		{
			name:  "not JSON",
			frame: `hello`,
			err:   errMalformed,
		},
		{
			name:  "bad id type",
			frame: `{"id":{"x":1},"type":"MessageRead","data":{"dialogId":"d1","messageId":"m1"}}`,
			err:   errMalformed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mapFrame("p1", []byte(tt.frame), t0)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.event != tt.event || string(m.data) != tt.data {
				t.Fatalf("got %s %s\nwant %s %s", m.event, m.data, tt.event, tt.data)
			}
		})
	}
}

func TestEnvelope(t *testing.T) {
	payload := `{"profileId":"p1","state":"connected"}`
	env := wrap(42, []byte(payload))
	if string(env) != `{"term":42,"data":`+payload+`}` {
		t.Fatalf("wrap = %s", env)
	}
	term, data, ok := unwrap(env)
	if !ok || term != 42 || string(data) != payload {
		t.Fatalf("unwrap = %d %s %v", term, data, ok)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = unwrap(env) }); n != 0 {
		t.Errorf("unwrap allocates %v times", n)
	}
	// Other spellings of the same object go through encoding/json.
	term, data, ok = unwrap([]byte(` { "data": {"a":1}, "term": 7 }`))
	if !ok || term != 7 || string(data) != `{"a":1}` {
		t.Fatalf("unwrap (reordered) = %d %s %v", term, data, ok)
	}
	for _, bad := range []string{``, `{}`, `{"term":1}`, `{"term":"1","data":{}}`, `{"term":1,"data":[1]}`, `[1]`, `{"term":1,"data":{}`} {
		if _, _, ok := unwrap([]byte(bad)); ok {
			t.Errorf("unwrap(%q) ok", bad)
		}
	}
}

func FuzzMapFrame(f *testing.F) {
	f.Add([]byte(`{"id":"e1","type":"MessageSent","data":{"dialogId":"d1","messageId":"m1","fromId":"u1","text":"hi","createdAt":1}}`))
	f.Add([]byte(`{"id":3,"type":"DialogLimitChanged","data":{"dialogId":"d1","limit":1,"remaining":0}}`))
	f.Add([]byte(`{"term":1,"data":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := mapFrame("p1", b, t0)
		if err == nil && !json.Valid(m.data) {
			t.Fatalf("invalid payload %s", m.data)
		}
		for _, half := range [][]byte{b[:len(b)/2], b[len(b)/2:]} {
			_, _ = mapFrame("p1", half, t0)
		}
		if term, data, ok := unwrap(b); ok {
			if !json.Valid(data) || data[0] != '{' {
				t.Fatalf("unwrap(%q) = %d %q", b, term, data)
			}
		}
	})
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Rand: func() float64 { return 1 }}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := b.Cap(1000); got != 30*time.Second {
		t.Errorf("Cap(1000) = %v", got)
	}
	b.Rand = func() float64 { return 0.25 }
	if got := b.Delay(3); got != 500*time.Millisecond {
		t.Errorf("Delay(3) at 0.25 = %v, want 500ms", got)
	}
	// The default source stays within the bounds.
	var d Backoff
	for n := 1; n < 12; n++ {
		if got := d.Delay(n); got < 0 || got > d.Cap(n) {
			t.Fatalf("Delay(%d) = %v outside [0, %v]", n, got, d.Cap(n))
		}
	}
}

func TestCookieHeader(t *testing.T) {
	tests := []struct {
		session string
		want    string // "" means refused
	}{
		{`{"cookies":{"sid":"abc","a":"1"}}`, "a=1; sid=abc"},
		{`{"cookies":"sid=abc; a=1"}`, "sid=abc; a=1"},
		{`{"cookies":"sid=abc;"}`, "sid=abc"},
		{`{"cookies":{"q":"\"quoted\""},"userAgent":"x"}`, `q="quoted"`},
		{`{"cookies":{"e":""}}`, "e="},
		{`{}`, ""},
		{`{"cookies":null}`, ""},
		{`{"cookies":{}}`, ""},
		{`{"cookies":""}`, ""},
		{`{"cookies":42}`, ""},
		{`{"cookies":{"sid":1}}`, ""},
		{`{"cookies":{"s id":"x"}}`, ""},
		{`{"cookies":{"sid":"a\r\nX-Evil: 1"}}`, ""},
		{`{"cookies":"sid=a\r\nX-Evil: 1"}`, ""},
		{`{"cookies":"novalue"}`, ""},
		{`{"cookies":{"sid":"a;b"}}`, ""},
		{`{"cookies":{"":"x"}}`, ""},
		{`[]`, ""},
		{`{"cookies":{"a":"1"}} {}`, ""},
		{`{"cookies":{"a":"` + strings.Repeat("x", 9000) + `"}}`, ""},
	}
	for _, tt := range tests {
		got, err := cookieHeader(json.RawMessage(tt.session))
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrBadSession) {
				t.Errorf("cookieHeader(%.60s) = %q, %v; want ErrBadSession", tt.session, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("cookieHeader(%s) = %q, %v; want %q", tt.session, got, err, tt.want)
		}
	}
}

func TestProfileURL(t *testing.T) {
	for _, tt := range []struct{ base, id, want string }{
		{"ws://h:1/ws", "p1", "ws://h:1/ws?profileId=p1"},
		{"ws://h:1/ws?v=2", "p/1", "ws://h:1/ws?profileId=p%2F1&v=2"},
		{"wss://h/profiles/{profileId}/events", "p 1", "wss://h/profiles/p%201/events"},
	} {
		b := &Bridge{cfg: Config{URL: tt.base}}
		if got := b.profileURL(tt.id); got != tt.want {
			t.Errorf("profileURL(%q, %q) = %q, want %q", tt.base, tt.id, got, tt.want)
		}
	}
	for _, bad := range []string{"", "http://h/ws", "ws://", "://x"} {
		if err := checkURL(bad); err == nil {
			t.Errorf("checkURL(%q) accepted", bad)
		}
	}
}
