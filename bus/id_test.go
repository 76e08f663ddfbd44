package bus

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/anchat/realtime/internal/jsonstr"
)

func TestCompareIDs(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1-0", "1-0", 0},
		{"1-0", "1-1", -1},
		{"2-0", "1-9", 1},
		{"10-0", "9-0", 1}, // numeric, not lexical
		{"1-10", "1-9", 1},
		{"1700000000000-5", "1700000000001-0", -1},
		{"", "0-0", -1},
		{"garbage", "0-0", -1},
		{"0-0", "x", 1},
		{"x", "", 0},
		{"1-", "1-0", -1},
		{"-1", "1-0", -1},
		{"1-2-3", "1-0", -1},
		{"+1-0", "1-0", -1},
		{"1 -0", "1-0", -1},
		{"18446744073709551616-0", "1-0", -1}, // overflows uint64
		{"18446744073709551615-18446744073709551615", "1-0", 1},
	} {
		if got := CompareIDs(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareIDs(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestNextID(t *testing.T) {
	id := eventID{}
	id = id.next(5)
	if id.String() != "5-0" {
		t.Fatal(id)
	}
	if id = id.next(5); id.String() != "5-1" {
		t.Fatal(id)
	}
	if id = id.next(3); id.String() != "5-2" { // clock went back
		t.Fatal(id)
	}
	if id = id.next(6); id.String() != "6-0" {
		t.Fatal(id)
	}
}

func FuzzCompareIDs(f *testing.F) {
	for _, s := range []string{"1-0", "0-0", "", "x", "1-", "123-456", "18446744073709551615-1"} {
		f.Add(s, "1-1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if CompareIDs(a, b) != -CompareIDs(b, a) {
			t.Fatalf("not antisymmetric: %q %q", a, b)
		}
		if CompareIDs(a, a) != 0 {
			t.Fatalf("%q != itself", a)
		}
		if id, ok := parseID(a); ok {
			if CompareIDs(id.String(), a) != 0 {
				t.Fatalf("round trip of %q gave %q", a, id.String())
			}
			if !ValidID(id.String()) {
				t.Fatalf("formatted id %q is not valid", id.String())
			}
		}
	})
}

func TestSpliceFields(t *testing.T) {
	for _, tc := range []struct {
		data   string
		fields []string
		want   string
	}{
		{`{"a":1}`, []string{"messageId", "1-0"}, `{"messageId":"1-0","a":1}`},
		{`{}`, []string{"messageId", "1-0"}, `{"messageId":"1-0"}`},
		{` { } `, []string{"k", "v"}, `{"k":"v" } `},
		{"\n{\"a\":1}", []string{"a", "b", "c", "d"}, `{"a":"b","c":"d","a":1}`},
		{`{"a":1}`, nil, `{"a":1}`},
		{`{"a":1}`, []string{"q", "x\"y\\z\n\x01"}, `{"q":"x\"y\\z\n\u0001","a":1}`},
		{`[1]`, []string{"k", "v"}, `[1]`},
		{``, []string{"k", "v"}, ``},
	} {
		if got := string(SpliceFields(json.RawMessage(tc.data), tc.fields...)); got != tc.want {
			t.Errorf("SpliceFields(%q, %q) = %s, want %s", tc.data, tc.fields, got, tc.want)
		}
	}
}

// Spliced fields come out as encoding/json writes them: invalid UTF-8 as
// U+FFFD, so a splice into valid UTF-8 stays valid UTF-8 (a JSON text must
// be, RFC 8259 section 8.1).
func TestSpliceFieldsInvalidUTF8(t *testing.T) {
	got := SpliceFields(json.RawMessage(`{"a":1}`), "event\xffId", "1-\xe2\x82")
	if want := `{"event\ufffdId":"1-\ufffd\ufffd","a":1}`; string(got) != want {
		t.Fatalf("SpliceFields = %q, want %q", got, want)
	}
	if !utf8.Valid(got) {
		t.Fatalf("SpliceFields = %q: not UTF-8", got)
	}
}

func TestAppendSplicedAllocs(t *testing.T) {
	data := json.RawMessage(`{"content":"hello"}`)
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { buf = AppendSpliced(buf[:0], data, "eventId", "1700000000000-0") }); n != 0 {
		t.Fatalf("AppendSpliced allocates %v times with a big enough buffer", n)
	}
}

func FuzzSpliceFields(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, ` {"a":[1,2]} `, `[]`, `"x"`, ``, `{`} {
		f.Add(s, "k", "v")
	}
	f.Fuzz(func(t *testing.T, data, key, value string) {
		out := SpliceFields(json.RawMessage(data), key, value)
		var obj map[string]any
		if json.Unmarshal([]byte(data), &obj) != nil {
			return // only valid objects must stay valid
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("SpliceFields(%q) = %q: invalid JSON: %v", data, out, err)
		}
		if !strings.HasPrefix(string(out), "{"+string(jsonstr.Append(nil, key))+":") {
			t.Fatalf("SpliceFields(%q) = %q: field not first", data, out)
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add("1-1\n1-0\nnew_message\n{\"a\":1}")
	f.Add("\n\nuser_typing\n{}")
	f.Add("\n\n\n")
	f.Add("no newline")
	f.Add("1-1\n1-0\nevent\n{\"multi\":\"line\n\"}")
	f.Fuzz(func(t *testing.T, s string) {
		id, prev, event, data, ok := parseEnvelope(s)
		if !ok {
			if strings.Count(s, "\n") >= 3 {
				t.Fatalf("rejected %q", s)
			}
			return
		}
		if back := id + "\n" + prev + "\n" + event + "\n" + string(data); back != s {
			t.Fatalf("round trip of %q gave %q", s, back)
		}
		if strings.Contains(id+prev+event, "\n") {
			t.Fatalf("newline in a header field of %q", s)
		}
	})
}
