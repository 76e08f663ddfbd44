package socketio

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestParseEngine(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		typ     byte
		data    string
		wantErr error
	}{
		{"open", `0{"sid":"lv_VI97HAXpY6yYWAAAC"}`, EngineOpen, `{"sid":"lv_VI97HAXpY6yYWAAAC"}`, nil},
		{"close", "1", EngineClose, "", nil},
		{"ping", "2", EnginePing, "", nil},
		{"ping probe", "2probe", EnginePing, "probe", nil},
		{"pong", "3", EnginePong, "", nil},
		{"message", `42["hello",1]`, EngineMessage, `2["hello",1]`, nil},
		{"message text", "4hello", EngineMessage, "hello", nil},
		{"upgrade", "5", EngineUpgrade, "", nil},
		{"noop", "6", EngineNoop, "", nil},
		{"utf-8 data", `42["send","héllo €"]`, EngineMessage, `2["send","héllo €"]`, nil},
		{"empty", "", 0, "", ErrEmpty},
		{"type 7", "7", 0, "", ErrEngineType},
		{"type letter", "abc", 0, "", ErrEngineType},
		{"base64 binary prefix is polling only", "bAQIDBA==", 0, "", ErrEngineType},
		{"invalid utf-8", "4\xff\xfe", 0, "", ErrUTF8},
		{"truncated utf-8", "42[\"\xe2\x82\"]", 0, "", ErrUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, data, err := ParseEngine([]byte(tt.frame))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if typ != tt.typ || string(data) != tt.data {
				t.Errorf("got (%q, %q), want (%q, %q)", typ, data, tt.typ, tt.data)
			}
		})
	}
}

func TestAppendOpen(t *testing.T) {
	o := Open{SID: "lv_VI97HAXpY6yYWAAAC", PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 65536}
	got := string(AppendOpen(nil, o))
	// The reference open packet (PITFALLS.md), with upgrades empty on a
	// WebSocket-only server and our maxPayload.
	want := `0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}`
	if got != want {
		t.Fatalf("AppendOpen = %s\nwant         %s", got, want)
	}

	// The Engine.IO v4 test suite expects exactly these keys.
	var m map[string]any
	if err := json.Unmarshal([]byte(got[1:]), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q", k)
		}
	}
	if len(m) != 5 {
		t.Errorf("keys = %v, want exactly 5", m)
	}
}

func TestParseOpen(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    Open
		wantErr bool
	}{
		{
			name: "spec example",
			data: `{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
			want: Open{SID: "lv_VI97HAXpY6yYWAAAC", PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 1000000},
		},
		{
			name: "no maxPayload",
			data: `{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200}`,
			want: Open{SID: "abc", PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond},
		},
		{name: "not json", data: `sid=abc`, wantErr: true},
		{name: "empty", data: ``, wantErr: true},
		{name: "no sid", data: `{"pingInterval":1,"pingTimeout":1}`, wantErr: true},
		{name: "empty sid", data: `{"sid":"","pingInterval":1,"pingTimeout":1}`, wantErr: true},
		{name: "sid not string", data: `{"sid":1,"pingInterval":1,"pingTimeout":1}`, wantErr: true},
		{name: "no pingInterval", data: `{"sid":"a","pingTimeout":1}`, wantErr: true},
		{name: "zero pingTimeout", data: `{"sid":"a","pingInterval":1,"pingTimeout":0}`, wantErr: true},
		{name: "huge pingInterval", data: `{"sid":"a","pingInterval":1e15,"pingTimeout":1}`, wantErr: true},
		{name: "negative maxPayload", data: `{"sid":"a","pingInterval":1,"pingTimeout":1,"maxPayload":-1}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOpen([]byte(tt.data))
			if tt.wantErr {
				if !errors.Is(err, ErrOpen) {
					t.Fatalf("err = %v, want ErrOpen", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOpenRoundTrip(t *testing.T) {
	in := Open{SID: `we"ird\sid`, PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond, MaxPayload: 1}
	typ, data, err := ParseEngine(AppendOpen(nil, in))
	if err != nil || typ != EngineOpen {
		t.Fatalf("ParseEngine: %q %v", typ, err)
	}
	out, err := ParseOpen(data)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}
