package jsonstr_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/anchat/realtime/internal/jsonstr"
)

// stdlib is encoding/json's encoding of s with HTML escaping off, the
// reference Append matches byte for byte.
func stdlib(t testing.TB, s string) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func TestAppend(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`"quoted"`, `"\"quoted\""`},
		{`back\slash`, `"back\\slash"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"héllo €😀", `"héllo €😀"`},
		{"<a&b>", `"<a&b>"`},
		{"/slash", `"/slash"`},
		{"line\u2028para\u2029", `"line\u2028para\u2029"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"\xe2\x82", `"\ufffd\ufffd"`},                         // a truncated sequence: each byte
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},               // a UTF-16 surrogate is not UTF-8
		{"\xc0\xaf", `"\ufffd\ufffd"`},                         // overlong encoding of '/'
		{"ok\xf4\x90\x80\x80", `"ok\ufffd\ufffd\ufffd\ufffd"`}, // above U+10FFFF
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := string(jsonstr.Append(nil, tt.in))
			if got != tt.want {
				t.Fatalf("Append(%q) = %s, want %s", tt.in, got, tt.want)
			}
			if std := stdlib(t, tt.in); got != std {
				t.Fatalf("Append(%q) = %s, encoding/json writes %s", tt.in, got, std)
			}
		})
	}
}

func TestAppendKeepsDst(t *testing.T) {
	if got := string(jsonstr.Append([]byte(`{"a":`), "b")); got != `{"a":"b"` {
		t.Fatalf("got %s", got)
	}
}

func TestAppendAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	in := "a \"quoted\" \x01 line\u2028 with \xff and 😀"
	if n := testing.AllocsPerRun(100, func() { buf = jsonstr.Append(buf[:0], in) }); n != 0 {
		t.Fatalf("Append allocates %v times with a big enough buffer", n)
	}
}

// FuzzAppend: the output is encoding/json's, byte for byte, valid UTF-8, and
// decodes back to the input when the input is valid UTF-8.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\x00\x1f\x7f", "héllo €😀", "<&>", "\u2028\u2029", "\xff\xe2\x82", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := jsonstr.Append(nil, s)
		if std := stdlib(t, s); string(got) != std {
			t.Fatalf("Append(%q) = %s, encoding/json writes %s", s, got, std)
		}
		if !utf8.Valid(got) {
			t.Fatalf("Append(%q) = %q: not UTF-8", s, got)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("Append(%q) = %s: %v", s, got, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("Append(%q) decodes to %q", s, back)
		}
	})
}
