package socketio

import (
	"bytes"
	"encoding/json"
	"testing"
)

// fuzzSeeds are frames as socket.io-client v4 and our server write them.
var fuzzSeeds = []string{
	`40/messenger,{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSIsImV4cCI6MTcxODAzMzExMn0.c2lnbmF0dXJl"}`,
	`40`,
	`40/messenger,`,
	`40{"token":"123"}`,
	`42/messenger,0["send_message",{"chatId":"c1","content":"hi","messageType":"TEXT","tempId":"t1"}]`,
	`42/messenger,["typing_start",{"chatId":"c1"}]`,
	`42/messenger,3["join_chat",{"chatId":"c1","lastEventId":"1718033112345-0"}]`,
	`42["hello",1]`,
	`42/admin,13["project:delete",123]`,
	`43/admin,13[]`,
	`43/messenger,0[{"ok":true,"tempId":"t1","messageId":"m1"}]`,
	`451-/messenger,["send_message",{"_placeholder":true,"num":0}]`,
	`451-["hello",{"_placeholder":true,"num":0}]`,
	`461-/admin,1[{"_placeholder":true,"num":0}]`,
	`44/admin,{"message":"Not authorized"}`,
	`44/messenger,{"message":"token expired","data":{"code":"AUTH_EXPIRED"}}`,
	`41/admin,`,
	`41`,
	`0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}`,
	`2`,
	`3`,
	`2probe`,
	`5`,
	`6`,
	`1`,
	`42["e",{"a":[1,[2,{"b":"say \"hi\" \\ \u00e9"}]],"c":{}},-1.5e3,true,null]`,
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkFrame(t, frame)
		// Each split in two, each half parsed on its own: a frame cut short
		// (or a tail mistaken for a frame) must never panic. Long inputs are
		// split at a stride to keep an iteration cheap.
		step := 1
		if len(frame) > 512 {
			step = len(frame) / 512
		}
		for i := 0; i <= len(frame); i += step {
			checkFrame(t, frame[:i])
			checkFrame(t, frame[i:])
		}
	})
}

// checkFrame runs a frame through every parser that applies to it and checks
// the round-trip invariants of whatever parses.
func checkFrame(t *testing.T, frame []byte) {
	checkSkipper(t, frame)
	typ, data, err := ParseEngine(frame)
	if err != nil {
		return
	}
	if !bytes.Equal(data, frame[1:]) {
		t.Fatalf("ParseEngine(%q): data %q is not the frame's tail", frame, data)
	}
	switch typ {
	case EngineOpen:
		o, err := ParseOpen(data)
		if err != nil {
			return
		}
		_, data2, err := ParseEngine(AppendOpen(nil, o))
		if err != nil {
			t.Fatalf("re-encoded open does not parse: %v", err)
		}
		o2, err := ParseOpen(data2)
		if err != nil || o2 != o {
			t.Fatalf("open round trip: %+v -> %+v, %v", o, o2, err)
		}
	case EngineMessage:
		checkPacket(t, data)
	}
}

func checkPacket(t *testing.T, data []byte) {
	p, err := ParsePacket(data)
	if err != nil {
		return
	}
	if len(p.Namespace) == 0 || p.Namespace[0] != '/' || bytes.IndexByte(p.Namespace, ',') >= 0 {
		t.Fatalf("ParsePacket(%q): bad namespace %q", data, p.Namespace)
	}
	if p.ID < -1 || p.Attachments < 0 {
		t.Fatalf("ParsePacket(%q): id %d, attachments %d", data, p.ID, p.Attachments)
	}
	if !bytes.HasSuffix(data, p.Data) {
		t.Fatalf("ParsePacket(%q): Data %q is not the input's tail", data, p.Data)
	}
	checkSkipper(t, p.Data)
	nsp := string(p.Namespace)
	switch p.Type {
	case Event, BinaryEvent:
		name, arg0, nargs, err := ParseEvent(p.Data)
		if err != nil {
			return
		}
		if nargs < 0 || (nargs == 0) != (arg0 == nil) {
			t.Fatalf("ParseEvent(%q): nargs %d with arg0 %q", p.Data, nargs, arg0)
		}
		// Re-encode the name and first argument; parsing again gives them back.
		frame := AppendEvent(nil, nsp, p.ID, string(name), arg0)
		typ, d2, err := ParseEngine(frame)
		if err != nil || typ != EngineMessage {
			t.Fatalf("re-encoded event %q: ParseEngine %q, %v", frame, typ, err)
		}
		p2, err := ParsePacket(d2)
		if err != nil {
			t.Fatalf("re-encoded event %q: ParsePacket: %v", frame, err)
		}
		if p2.Type != Event || string(p2.Namespace) != nsp || p2.ID != p.ID {
			t.Fatalf("re-encoded event %q: got %s", frame, fmtPacket(p2))
		}
		name2, arg02, _, err := ParseEvent(p2.Data)
		if err != nil {
			t.Fatalf("re-encoded event %q: ParseEvent: %v", frame, err)
		}
		if !bytes.Equal(name2, name) || !bytes.Equal(arg02, arg0) {
			t.Fatalf("event round trip: (%q, %q) -> (%q, %q)", name, arg0, name2, arg02)
		}
	case Ack, BinaryAck:
		arg0, nargs, err := ParseArgs(p.Data)
		if err != nil {
			return
		}
		if (nargs == 0) != (arg0 == nil) {
			t.Fatalf("ParseArgs(%q): nargs %d with arg0 %q", p.Data, nargs, arg0)
		}
		frame := AppendAck(nil, nsp, p.ID, arg0)
		_, d2, err := ParseEngine(frame)
		if err != nil {
			t.Fatalf("re-encoded ack %q: %v", frame, err)
		}
		p2, err := ParsePacket(d2)
		if err != nil || p2.Type != Ack || p2.ID != p.ID || string(p2.Namespace) != nsp {
			t.Fatalf("re-encoded ack %q: %s, %v", frame, fmtPacket(p2), err)
		}
		arg02, _, err := ParseArgs(p2.Data)
		if err != nil || !bytes.Equal(arg02, arg0) {
			t.Fatalf("ack round trip: %q -> %q, %v", arg0, arg02, err)
		}
	}
}

// checkSkipper compares the JSON skipper's verdict on b as one JSON value
// with encoding/json's. Inputs are kept short enough that the skipper's depth
// limit cannot be what tells them apart.
func checkSkipper(t *testing.T, b []byte) {
	if len(b) > 2*MaxJSONDepth {
		return
	}
	end, err := skipValue(b, skipSpace(b, 0), 0)
	got := err == nil && skipSpace(b, end) == len(b)
	if want := json.Valid(b); got != want {
		t.Fatalf("skipValue(%q): valid = %v (end %d, err %v), encoding/json says %v", b, got, end, err, want)
	}
}
