package socketio

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		wantName string
		wantArg0 string // "" means nil
		wantN    int
		wantErr  error
	}{
		{name: "name only", data: `["foo"]`, wantName: "foo"},
		{name: "hello 1", data: `["hello",1]`, wantName: "hello", wantArg0: `1`, wantN: 1},
		{name: "spec ack example", data: `["project:delete",123]`, wantName: "project:delete", wantArg0: `123`, wantN: 1},
		{name: "hey Jude", data: `["hey","Jude"]`, wantName: "hey", wantArg0: `"Jude"`, wantN: 1},
		{name: "binary placeholder", data: `["hello",{"_placeholder":true,"num":0}]`, wantName: "hello",
			wantArg0: `{"_placeholder":true,"num":0}`, wantN: 1},
		{name: "send_message", data: `["send_message",{"chatId":"c1","content":"hi","messageType":"TEXT","tempId":"t1"}]`,
			wantName: "send_message", wantArg0: `{"chatId":"c1","content":"hi","messageType":"TEXT","tempId":"t1"}`, wantN: 1},
		{name: "several args", data: `["m",1,"two",[3],{"4":4},null,true,false]`, wantName: "m", wantArg0: `1`, wantN: 7},
		{name: "nested and escaped", data: `["e",{"a":[1,[2,{"b":"say \"hi\" \\ \u00e9 \/"}]],"c":{}},[]]`,
			wantName: "e", wantArg0: `{"a":[1,[2,{"b":"say \"hi\" \\ \u00e9 \/"}]],"c":{}}`, wantN: 2},
		{name: "string arg with brackets and commas", data: `["e","],[{,}"]`, wantName: "e", wantArg0: `"],[{,}"`, wantN: 1},
		{name: "whitespace", data: " [ \"e\" ,\n\t{ \"a\" : 1 } , 2 ] \r\n", wantName: "e", wantArg0: `{ "a" : 1 }`, wantN: 2},
		{name: "numbers", data: `["n",-0,0.5,1e10,-2.5E-3,12]`, wantName: "n", wantArg0: `-0`, wantN: 5},
		{name: "utf-8 name", data: `["événement",1]`, wantName: "événement", wantArg0: `1`, wantN: 1},
		{name: "empty name", data: `["",1]`, wantName: "", wantArg0: `1`, wantN: 1},

		{name: "empty data", data: ``, wantErr: ErrPayload},
		{name: "object", data: `{"a":1}`, wantErr: ErrPayload},
		{name: "empty array", data: `[]`, wantErr: ErrPayload},
		{name: "empty array spaced", data: `[ ]`, wantErr: ErrPayload},
		{name: "numeric name", data: `[1,2]`, wantErr: ErrEventName},
		{name: "object name", data: `[{"a":1}]`, wantErr: ErrEventName},
		{name: "escaped name", data: `["a\"b",1]`, wantErr: ErrEventName},
		{name: "unicode escape name", data: `["\u0061",1]`, wantErr: ErrEventName},
		{name: "invalid utf-8 name", data: "[\"a\xffb\",1]", wantErr: ErrEventName},
		{name: "control char in name", data: "[\"a\nb\",1]", wantErr: ErrJSON},
		{name: "unterminated", data: `["foo"`, wantErr: ErrJSON},
		{name: "unterminated name", data: `["foo`, wantErr: ErrJSON},
		{name: "open bracket only", data: `[`, wantErr: ErrJSON},
		{name: "trailing comma", data: `["foo",]`, wantErr: ErrJSON},
		{name: "trailing comma after arg", data: `["foo",1,]`, wantErr: ErrJSON},
		{name: "missing comma", data: `["foo" 1]`, wantErr: ErrJSON},
		{name: "garbage after", data: `["foo"]x`, wantErr: ErrJSON},
		{name: "two arrays", data: `["foo"]["bar"]`, wantErr: ErrJSON},
		{name: "unterminated object", data: `["foo",{"a":1]`, wantErr: ErrJSON},
		{name: "unterminated nested", data: `["foo",[[1,2]]`, wantErr: ErrJSON},
		{name: "object without colon", data: `["foo",{"a" 1}]`, wantErr: ErrJSON},
		{name: "object key not string", data: `["foo",{a:1}]`, wantErr: ErrJSON},
		{name: "object trailing comma", data: `["foo",{"a":1,}]`, wantErr: ErrJSON},
		{name: "bad escape", data: `["foo","\x"]`, wantErr: ErrJSON},
		{name: "short unicode escape", data: `["foo","\u12"]`, wantErr: ErrJSON},
		{name: "bad literal", data: `["foo",tru]`, wantErr: ErrJSON},
		{name: "literal run-on", data: `["foo",truex]`, wantErr: ErrJSON},
		{name: "bad number", data: `["foo",01]`, wantErr: ErrJSON},
		{name: "bare minus", data: `["foo",-]`, wantErr: ErrJSON},
		{name: "bad fraction", data: `["foo",1.]`, wantErr: ErrJSON},
		{name: "bad exponent", data: `["foo",1e]`, wantErr: ErrJSON},
		{name: "unquoted", data: `["foo",bar]`, wantErr: ErrJSON},
		{name: "raw control char in arg", data: "[\"foo\",\"a\tb\"]", wantErr: ErrJSON},
		{name: "too deep", data: `["foo",` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `]`, wantErr: ErrJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, arg0, n, err := ParseEvent([]byte(tt.data))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if string(name) != tt.wantName || string(arg0) != tt.wantArg0 || n != tt.wantN {
				t.Errorf("got (%q, %q, %d), want (%q, %q, %d)", name, arg0, n, tt.wantName, tt.wantArg0, tt.wantN)
			}
			if (arg0 == nil) != (tt.wantArg0 == "") {
				t.Errorf("arg0 nil = %v, want %v", arg0 == nil, tt.wantArg0 == "")
			}
			// Whatever ParseEvent accepts, encoding/json accepts too.
			var v []any
			if err := json.Unmarshal([]byte(tt.data), &v); err != nil {
				t.Errorf("encoding/json rejects accepted input: %v", err)
			}
		})
	}
}

func TestParseEventDepthLimit(t *testing.T) {
	// MaxJSONDepth levels in total are accepted, one more is not.
	ok := `["e",` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `]`
	if _, _, _, err := ParseEvent([]byte(ok)); err != nil {
		t.Errorf("depth %d: %v", MaxJSONDepth, err)
	}
	deep := `["e",` + strings.Repeat(`{"a":`, MaxJSONDepth) + `1` + strings.Repeat("}", MaxJSONDepth) + `]`
	if _, _, _, err := ParseEvent([]byte(deep)); !errors.Is(err, ErrJSON) {
		t.Errorf("depth %d: err = %v, want ErrJSON", MaxJSONDepth+1, err)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		wantArg0 string
		wantN    int
		wantErr  error
	}{
		{name: "empty", data: `[]`},
		{name: "empty spaced", data: ` [ ] `},
		{name: "bar", data: `["bar"]`, wantArg0: `"bar"`, wantN: 1},
		{name: "ok", data: `[{"ok":true,"messageId":"m1"}]`, wantArg0: `{"ok":true,"messageId":"m1"}`, wantN: 1},
		{name: "several", data: `[null,2,"x"]`, wantArg0: `null`, wantN: 3},
		{name: "placeholder", data: `[{"_placeholder":true,"num":0}]`, wantArg0: `{"_placeholder":true,"num":0}`, wantN: 1},

		{name: "nothing", data: ``, wantErr: ErrPayload},
		{name: "object", data: `{}`, wantErr: ErrPayload},
		{name: "unterminated", data: `[1`, wantErr: ErrJSON},
		{name: "open only", data: `[`, wantErr: ErrJSON},
		{name: "trailing", data: `[]]`, wantErr: ErrJSON},
		{name: "leading comma", data: `[,1]`, wantErr: ErrJSON},
		{name: "bad value", data: `[x]`, wantErr: ErrJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arg0, n, err := ParseArgs([]byte(tt.data))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if string(arg0) != tt.wantArg0 || n != tt.wantN {
				t.Errorf("got (%q, %d), want (%q, %d)", arg0, n, tt.wantArg0, tt.wantN)
			}
		})
	}
}

func TestParseEventAllocs(t *testing.T) {
	for _, d := range []string{
		`["send_message",{"chatId":"c1","content":"hi \"there\"","messageType":"TEXT","tempId":"t1","attachments":[{"url":"https://x/y","size":12}]}]`,
		`["typing_start",{"chatId":"c1"}]`,
		`["a\"b"]`,    // error path
		`["x",{"a":]`, // error path
	} {
		b := []byte(d)
		if n := testing.AllocsPerRun(100, func() { _, _, _, _ = ParseEvent(b) }); n != 0 {
			t.Errorf("ParseEvent(%s): %v allocs, want 0", d, n)
		}
	}
	b := []byte(`[{"ok":true,"tempId":"t1"}]`)
	if n := testing.AllocsPerRun(100, func() { _, _, _ = ParseArgs(b) }); n != 0 {
		t.Errorf("ParseArgs: %v allocs, want 0", n)
	}
}

// TestSkipValueAgreesWithEncodingJSON cross-checks the skipper's verdict on
// single values against encoding/json.Valid.
func TestSkipValueAgreesWithEncodingJSON(t *testing.T) {
	values := []string{
		`0`, `-0`, `1`, `-1`, `10`, `1.5`, `1e5`, `1E+5`, `1e-5`, `0.0`, `-0.5e10`,
		`01`, `-`, `+1`, `1.`, `.5`, `1e`, `1e+`, `0x10`, `- 1`, `NaN`, `Infinity`,
		`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\uD83D\uDE00"`,
		`"\u00g9"`, `"\a"`, `"`, `"abc`, "\"a\x01\"", `"\u"`,
		`true`, `false`, `null`, `tru`, `nul`, `True`, `nulll`,
		`[]`, `[1]`, `[1,2]`, `[ 1 , 2 ]`, `[1,]`, `[,]`, `[`, `]`, `[1 2]`, `[[]]`, `[[[]]`,
		`{}`, `{"a":1}`, `{ "a" : 1 , "b" : [ ] }`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1,}`, `{,}`, `{"a":1 "b":2}`, `{`,
		``, ` `, `x`,
	}
	for _, v := range values {
		t.Run(v, func(t *testing.T) {
			end, err := skipValue([]byte(v), 0, 0)
			got := err == nil && end == len(v)
			if want := json.Valid([]byte(v)) && len(strings.TrimSpace(v)) == len(v); got != want {
				t.Errorf("skipValue(%q) valid = %v (end %d, err %v), encoding/json says %v", v, got, end, err, want)
			}
		})
	}
}

func TestIsReservedEvent(t *testing.T) {
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if !IsReservedEvent(name) {
			t.Errorf("IsReservedEvent(%q) = false", name)
		}
	}
	for _, name := range []string{"", "new_message", "error", "message", "Connect", "connect "} {
		if IsReservedEvent(name) {
			t.Errorf("IsReservedEvent(%q) = true", name)
		}
	}
	name := []byte("send_message")
	if n := testing.AllocsPerRun(100, func() { _ = IsReservedEvent(string(name)) }); n != 0 {
		t.Errorf("IsReservedEvent(string(b)): %v allocs, want 0", n)
	}
}

// TestHasSpecialByte checks the eight-bytes-at-a-time string scan against the
// byte table, for every byte value at every position, among neighbours that
// are plain ASCII or high (UTF-8) bytes.
func TestHasSpecialByte(t *testing.T) {
	for _, fill := range []byte{'a', 0x80, 0xff, 0x21, 0x5d, 0x5b} {
		for pos := 0; pos < 8; pos++ {
			for c := 0; c < 256; c++ {
				var w [8]byte
				for k := range w {
					w[k] = fill
				}
				w[pos] = byte(c)
				want := false
				for _, x := range w {
					want = want || !plainStringByte[x]
				}
				x := uint64(0)
				for k := 7; k >= 0; k-- {
					x = x<<8 | uint64(w[k])
				}
				if got := hasSpecialByte(x); got != want {
					t.Fatalf("hasSpecialByte(% x) = %v, want %v", w, got, want)
				}
			}
		}
	}
}

func TestPeekEventName(t *testing.T) {
	deep := `["send_message",` + strings.Repeat("[", 10000)
	for _, tt := range []struct{ data, want string }{
		{deep, "send_message"},
		{`["join_chat",{"chatId":`, "join_chat"},
		{` [ "x" ]`, "x"},
		{`["a\u0041"]`, ""}, // escapes are not plain names
		{`[1,2]`, ""},
		{`{"a":1}`, ""},
		{`["unterminated`, ""},
		{strings.Repeat("[", 10000), ""},
	} {
		if got := PeekEventName([]byte(tt.data)); string(got) != tt.want {
			t.Errorf("PeekEventName(%.40q) = %q, want %q", tt.data, got, tt.want)
		}
	}
	if _, _, _, err := ParseEvent([]byte(deep)); !errors.Is(err, ErrJSON) {
		t.Errorf("ParseEvent of a 10,000-deep payload: %v, want ErrJSON", err)
	}
}
