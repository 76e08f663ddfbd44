package socketio

import "testing"

func TestEncoders(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"connect root", AppendConnect(nil, "/", "wZX3oN0bSVIhsaknAAAI"), `40{"sid":"wZX3oN0bSVIhsaknAAAI"}`},
		{"connect empty nsp is root", AppendConnect(nil, "", "x"), `40{"sid":"x"}`},
		{"connect admin", AppendConnect(nil, "/admin", "oSO0OpakMV_3jnilAAAA"), `40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}`},
		{"connect error root, no code", AppendConnectError(nil, "/", "Not authorized", ""), `44{"message":"Not authorized"}`},
		{"connect error admin, no code", AppendConnectError(nil, "/admin", "Not authorized", ""), `44/admin,{"message":"Not authorized"}`},
		{"connect error with code", AppendConnectError(nil, "/messenger", "token expired", "AUTH_EXPIRED"),
			`44/messenger,{"message":"token expired","data":{"code":"AUTH_EXPIRED"}}`},
		{"disconnect root", AppendDisconnect(nil, "/"), `41`},
		{"disconnect admin", AppendDisconnect(nil, "/admin"), `41/admin,`},
		{"event no arg", AppendEvent(nil, "/", -1, "foo", nil), `42["foo"]`},
		{"event hello 1", AppendEvent(nil, "/", -1, "hello", []byte(`1`)), `42["hello",1]`},
		{"event hey Jude", AppendEvent(nil, "/", -1, "hey", []byte(`"Jude"`)), `42["hey","Jude"]`},
		{"event admin", AppendEvent(nil, "/admin", -1, "bar", nil), `42/admin,["bar"]`},
		{"event with ack", AppendEvent(nil, "/", 12, "foo", nil), `4212["foo"]`},
		{"event admin with ack", AppendEvent(nil, "/admin", 13, "project:delete", []byte(`123`)), `42/admin,13["project:delete",123]`},
		{"event ack id 0", AppendEvent(nil, "/messenger", 0, "e", []byte(`{}`)), `42/messenger,0["e",{}]`},
		{"event escaped name", AppendEvent(nil, "/", -1, "a\"b\\c\n", nil), `42["a\"b\\c\n"]`},
		{"ack empty", AppendAck(nil, "/", 12, nil), `4312[]`},
		{"ack admin empty", AppendAck(nil, "/admin", 13, nil), `43/admin,13[]`},
		{"ack admin bar", AppendAck(nil, "/admin", 13, []byte(`"bar"`)), `43/admin,13["bar"]`},
		{"ack ok", AppendAck(nil, "/messenger", 0, []byte(`{"ok":true}`)), `43/messenger,0[{"ok":true}]`},
		{"client connect root", AppendClientConnect(nil, "/", nil), `40`},
		{"client connect admin", AppendClientConnect(nil, "/admin", nil), `40/admin,`},
		{"client connect admin auth", AppendClientConnect(nil, "/admin", []byte(`{"token":"123"}`)), `40/admin,{"token":"123"}`},
		{"client connect root auth", AppendClientConnect(nil, "/", []byte(`{"token":"123"}`)), `40{"token":"123"}`},
		{"appends to dst", AppendDisconnect([]byte("xyz"), "/a"), `xyz41/a,`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

// TestEncodeParseRoundTrip parses what the encoders write.
func TestEncodeParseRoundTrip(t *testing.T) {
	type want struct {
		typ  PacketType
		nsp  string
		id   int64
		data string
	}
	tests := []struct {
		name  string
		frame []byte
		want  want
	}{
		{"connect", AppendConnect(nil, "/messenger", "s1"), want{Connect, "/messenger", -1, `{"sid":"s1"}`}},
		{"connect root", AppendConnect(nil, "/", "s1"), want{Connect, "/", -1, `{"sid":"s1"}`}},
		{"connect error", AppendConnectError(nil, "/messenger", "m", "AUTH_REQUIRED"),
			want{ConnectError, "/messenger", -1, `{"message":"m","data":{"code":"AUTH_REQUIRED"}}`}},
		{"disconnect", AppendDisconnect(nil, "/messenger"), want{Disconnect, "/messenger", -1, ``}},
		{"disconnect root", AppendDisconnect(nil, "/"), want{Disconnect, "/", -1, ``}},
		{"event", AppendEvent(nil, "/messenger", -1, "new_message", []byte(`{"a":1}`)), want{Event, "/messenger", -1, `["new_message",{"a":1}]`}},
		{"event ack", AppendEvent(nil, "/messenger", 42, "x", nil), want{Event, "/messenger", 42, `["x"]`}},
		{"ack", AppendAck(nil, "/messenger", 0, []byte(`{"ok":false}`)), want{Ack, "/messenger", 0, `[{"ok":false}]`}},
		{"client connect", AppendClientConnect(nil, "/messenger", []byte(`{"token":"t"}`)), want{Connect, "/messenger", -1, `{"token":"t"}`}},
		{"client connect bare", AppendClientConnect(nil, "/messenger", nil), want{Connect, "/messenger", -1, ``}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, data, err := ParseEngine(tt.frame)
			if err != nil || typ != EngineMessage {
				t.Fatalf("ParseEngine(%s) = %q, %v", tt.frame, typ, err)
			}
			p, err := ParsePacket(data)
			if err != nil {
				t.Fatalf("ParsePacket(%s): %v", data, err)
			}
			got := want{p.Type, string(p.Namespace), p.ID, string(p.Data)}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEventRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		arg  []byte
	}{
		{"new_message", []byte(`{"eventId":"1-0","content":"he said \"hi\"","attachments":[]}`)},
		{"user_typing", []byte(`{"chatId":"c1","userId":"u1","isTyping":true}`)},
		{"no_arg", nil},
		{"number", []byte(`-1.5e3`)},
		{"événement", []byte(`"ünïcödé ✓"`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := AppendEvent(nil, "/messenger", 7, tt.name, tt.arg)
			_, data, err := ParseEngine(frame)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParsePacket(data)
			if err != nil {
				t.Fatal(err)
			}
			name, arg0, n, err := ParseEvent(p.Data)
			if err != nil {
				t.Fatal(err)
			}
			wantN := 1
			if tt.arg == nil {
				wantN = 0
			}
			if string(name) != tt.name || string(arg0) != string(tt.arg) || n != wantN || p.ID != 7 {
				t.Errorf("got (%q, %s, %d, id %d), want (%q, %s, %d, id 7)", name, arg0, n, p.ID, tt.name, tt.arg, wantN)
			}
		})
	}
}

func TestAppendAllocs(t *testing.T) {
	payload := []byte(newMessagePayload)
	buf := make([]byte, 0, 1024)
	checks := map[string]func(){
		"AppendEvent":        func() { buf = AppendEvent(buf[:0], "/messenger", -1, "new_message", payload) },
		"AppendEvent escape": func() { buf = AppendEvent(buf[:0], "/messenger", 3, "a\"b\x01\xff", payload) },
		"AppendAck":          func() { buf = AppendAck(buf[:0], "/messenger", 12, payload) },
		"AppendConnect":      func() { buf = AppendConnect(buf[:0], "/messenger", "oSO0OpakMV_3jnilAAAA") },
		"AppendConnectError": func() { buf = AppendConnectError(buf[:0], "/messenger", "no token", "AUTH_REQUIRED") },
		"AppendOpen": func() {
			buf = AppendOpen(buf[:0], Open{SID: "lv_VI97HAXpY6yYWAAAC", PingInterval: 25e9, PingTimeout: 20e9, MaxPayload: 65536})
		},
	}
	for name, f := range checks {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s into a buffer with room: %v allocs, want 0", name, n)
		}
	}
}
