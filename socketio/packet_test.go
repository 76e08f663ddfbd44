package socketio

import (
	"errors"
	"strconv"
	"testing"
)

func TestParsePacket(t *testing.T) {
	tests := []struct {
		name    string
		in      string // Engine.IO message data, after the '4'
		want    Packet
		wantErr error
	}{
		// Socket.IO v5 README, "Packet encoding > Examples" and "Sample session".
		{name: "connect root", in: `0`, want: Packet{Type: Connect, Namespace: []byte("/"), ID: -1}},
		{name: "connect root with sid", in: `0{"sid":"wZX3oN0bSVIhsaknAAAI"}`,
			want: Packet{Type: Connect, Namespace: []byte("/"), ID: -1, Data: []byte(`{"sid":"wZX3oN0bSVIhsaknAAAI"}`)}},
		{name: "connect admin", in: `0/admin,`, want: Packet{Type: Connect, Namespace: []byte("/admin"), ID: -1}},
		{name: "connect admin with auth", in: `0/admin,{"token":"123"}`,
			want: Packet{Type: Connect, Namespace: []byte("/admin"), ID: -1, Data: []byte(`{"token":"123"}`)}},
		{name: "connect admin with sid", in: `0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`,
			want: Packet{Type: Connect, Namespace: []byte("/admin"), ID: -1, Data: []byte(`{"sid":"oSO0OpakMV_3jnilAAAA"}`)}},
		{name: "disconnect root", in: `1`, want: Packet{Type: Disconnect, Namespace: []byte("/"), ID: -1}},
		{name: "disconnect admin", in: `1/admin,`, want: Packet{Type: Disconnect, Namespace: []byte("/admin"), ID: -1}},
		{name: "event", in: `2["foo"]`, want: Packet{Type: Event, Namespace: []byte("/"), ID: -1, Data: []byte(`["foo"]`)}},
		{name: "event hello", in: `2["hello",1]`, want: Packet{Type: Event, Namespace: []byte("/"), ID: -1, Data: []byte(`["hello",1]`)}},
		{name: "event admin", in: `2/admin,["bar"]`, want: Packet{Type: Event, Namespace: []byte("/admin"), ID: -1, Data: []byte(`["bar"]`)}},
		{name: "event with ack", in: `212["foo"]`, want: Packet{Type: Event, Namespace: []byte("/"), ID: 12, Data: []byte(`["foo"]`)}},
		{name: "event admin with ack", in: `2/admin,13["project:delete",123]`,
			want: Packet{Type: Event, Namespace: []byte("/admin"), ID: 13, Data: []byte(`["project:delete",123]`)}},
		{name: "event ack id 0", in: `2/messenger,0["send_message",{}]`,
			want: Packet{Type: Event, Namespace: []byte("/messenger"), ID: 0, Data: []byte(`["send_message",{}]`)}},
		{name: "ack empty", in: `312[]`, want: Packet{Type: Ack, Namespace: []byte("/"), ID: 12, Data: []byte(`[]`)}},
		{name: "ack admin empty", in: `3/admin,13[]`, want: Packet{Type: Ack, Namespace: []byte("/admin"), ID: 13, Data: []byte(`[]`)}},
		{name: "ack admin", in: `3/admin,13["bar"]`, want: Packet{Type: Ack, Namespace: []byte("/admin"), ID: 13, Data: []byte(`["bar"]`)}},
		{name: "connect error root", in: `4{"message":"Not authorized"}`,
			want: Packet{Type: ConnectError, Namespace: []byte("/"), ID: -1, Data: []byte(`{"message":"Not authorized"}`)}},
		{name: "connect error admin", in: `4/admin,{"message":"Not authorized"}`,
			want: Packet{Type: ConnectError, Namespace: []byte("/admin"), ID: -1, Data: []byte(`{"message":"Not authorized"}`)}},
		{name: "connect error string (v4 servers)", in: `4"Not authorized"`,
			want: Packet{Type: ConnectError, Namespace: []byte("/"), ID: -1, Data: []byte(`"Not authorized"`)}},
		{name: "binary event", in: `51-["hello",{"_placeholder":true,"num":0}]`,
			want: Packet{Type: BinaryEvent, Namespace: []byte("/"), Attachments: 1, ID: -1, Data: []byte(`["hello",{"_placeholder":true,"num":0}]`)}},
		{name: "binary event two attachments", in: `52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			want: Packet{Type: BinaryEvent, Namespace: []byte("/admin"), Attachments: 2, ID: -1,
				Data: []byte(`["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
		{name: "binary event with ack", in: `51-14["foo",{"_placeholder":true,"num":0}]`,
			want: Packet{Type: BinaryEvent, Namespace: []byte("/"), Attachments: 1, ID: 14, Data: []byte(`["foo",{"_placeholder":true,"num":0}]`)}},
		{name: "binary ack", in: `61-15["bar",{"_placeholder":true,"num":0}]`,
			want: Packet{Type: BinaryAck, Namespace: []byte("/"), Attachments: 1, ID: 15, Data: []byte(`["bar",{"_placeholder":true,"num":0}]`)}},
		{name: "binary ack admin", in: `61-/admin,1[{"_placeholder":true,"num":0}]`,
			want: Packet{Type: BinaryAck, Namespace: []byte("/admin"), Attachments: 1, ID: 1, Data: []byte(`[{"_placeholder":true,"num":0}]`)}},
		{name: "binary event zero attachments", in: `50-["x"]`, want: Packet{Type: BinaryEvent, Namespace: []byte("/"), ID: -1, Data: []byte(`["x"]`)}},
		{name: "ack id 18 digits", in: `2999999999999999999["x"]`,
			want: Packet{Type: Event, Namespace: []byte("/"), ID: 999999999999999999, Data: []byte(`["x"]`)}},
		// socket.io-parser's decodeString reads the namespace to a comma or
		// to the end of the packet.
		{name: "connect namespace without comma", in: `0/admin`, want: Packet{Type: Connect, Namespace: []byte("/admin"), ID: -1, Data: []byte{}}},
		{name: "disconnect namespace without comma", in: `1/admin`, want: Packet{Type: Disconnect, Namespace: []byte("/admin"), ID: -1, Data: []byte{}}},
		{name: "namespace root written out", in: `2/,["x"]`, want: Packet{Type: Event, Namespace: []byte("/"), ID: -1, Data: []byte(`["x"]`)}},

		{name: "empty", in: ``, wantErr: ErrEmpty},
		{name: "type 7", in: `7["x"]`, wantErr: ErrPacketType},
		{name: "type letter", in: `x`, wantErr: ErrPacketType},
		{name: "type below zero", in: `/`, wantErr: ErrPacketType},
		{name: "event namespace without comma", in: `2/admin["x"]`, wantErr: ErrPayload},
		{name: "binary without count", in: `5["x"]`, wantErr: ErrAttachments},
		{name: "binary without dash", in: `51["x"]`, wantErr: ErrAttachments},
		{name: "binary empty count", in: `5-["x"]`, wantErr: ErrAttachments},
		{name: "binary count only", in: `51`, wantErr: ErrAttachments},
		{name: "binary count too long", in: `51234567890-["x"]`, wantErr: ErrAttachments},
		{name: "ack id 19 digits", in: `21234567890123456789["x"]`, wantErr: ErrAckID},
		{name: "ack without id", in: `3[]`, wantErr: ErrAckID},
		{name: "binary ack without id", in: `61-[{"_placeholder":true,"num":0}]`, wantErr: ErrAckID},
		{name: "event without payload", in: `2`, wantErr: ErrPayload},
		{name: "event id without payload", in: `212`, wantErr: ErrPayload},
		{name: "event object payload", in: `2{"a":1}`, wantErr: ErrPayload},
		{name: "event string payload", in: `2"foo"`, wantErr: ErrPayload},
		{name: "ack object payload", in: `31{}`, wantErr: ErrPayload},
		{name: "connect array payload", in: `0["x"]`, wantErr: ErrPayload},
		{name: "connect digits", in: `0123`, wantErr: ErrPayload},
		{name: "disconnect payload", in: `1{}`, wantErr: ErrPayload},
		{name: "connect error empty", in: `4`, wantErr: ErrPayload},
		{name: "connect error array", in: `4[]`, wantErr: ErrPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePacket([]byte(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !equalPacket(got, tt.want) {
				t.Errorf("got  %s\nwant %s", fmtPacket(got), fmtPacket(tt.want))
			}
		})
	}
}

func TestParsePacketAliasesInput(t *testing.T) {
	b := []byte(`2/admin,13["x"]`)
	p, err := ParsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	if &p.Namespace[0] != &b[1] || &p.Data[0] != &b[10] {
		t.Error("Namespace and Data do not alias the input")
	}
}

func TestPacketTypeString(t *testing.T) {
	if got := ConnectError.String(); got != "CONNECT_ERROR" {
		t.Errorf("ConnectError.String() = %q", got)
	}
	if got := PacketType(42).String(); got != "PacketType(42)" {
		t.Errorf("PacketType(42).String() = %q", got)
	}
}

func TestParsePacketAllocs(t *testing.T) {
	frames := []string{
		`2/messenger,0["send_message",{"chatId":"c1","content":"hi","messageType":"TEXT","tempId":"t1"}]`,
		`0/messenger,{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x"}`,
		`0`,
		`3/messenger,7[{"ok":true}]`,
		`51-/messenger,["x",{"_placeholder":true,"num":0}]`,
		`2/admin["x"]`, // error path
	}
	for _, f := range frames {
		b := []byte(f)
		if n := testing.AllocsPerRun(100, func() { _, _ = ParsePacket(b) }); n != 0 {
			t.Errorf("ParsePacket(%s): %v allocs, want 0", f, n)
		}
	}
}

func equalPacket(a, b Packet) bool {
	return a.Type == b.Type && string(a.Namespace) == string(b.Namespace) && a.Attachments == b.Attachments &&
		a.ID == b.ID && string(a.Data) == string(b.Data)
}

func fmtPacket(p Packet) string {
	return p.Type.String() + " nsp=" + string(p.Namespace) + " att=" + itoa(int64(p.Attachments)) +
		" id=" + itoa(p.ID) + " data=" + string(p.Data)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestParsePacketBadPayloadKeepsHeader: a packet whose header parses but
// whose payload is of the wrong kind still reports its header, so a server
// can answer it instead of closing.
func TestParsePacketBadPayloadKeepsHeader(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Packet
	}{
		{`2/messenger,7{"a":1}`, Packet{Type: Event, Namespace: []byte("/messenger"), ID: 7, Data: []byte(`{"a":1}`)}},
		{`2/messenger`, Packet{Type: Event, Namespace: []byte("/messenger"), ID: -1, Data: []byte{}}},
		{`2/messenger,12`, Packet{Type: Event, Namespace: []byte("/messenger"), ID: 12, Data: []byte{}}},
		{`52-/messenger,3"x"`, Packet{Type: BinaryEvent, Namespace: []byte("/messenger"), Attachments: 2, ID: 3, Data: []byte(`"x"`)}},
	} {
		got, err := ParsePacket([]byte(tt.in))
		if !errors.Is(err, ErrPayload) {
			t.Errorf("%s: err = %v, want ErrPayload", tt.in, err)
			continue
		}
		if !equalPacket(got, tt.want) {
			t.Errorf("%s: got %s, want %s", tt.in, fmtPacket(got), fmtPacket(tt.want))
		}
	}
}
