package lease

import "testing"

// TestParseAcquireReply covers every shape of acquire.lua's reply, including
// malformed ones: a refusal of two elements used to panic (index 2).
func TestParseAcquireReply(t *testing.T) {
	cases := []struct {
		name   string
		reply  []any
		want   Term
		ok     bool
		errors bool
	}{
		{"granted", []any{int64(1), "7"}, Term{Holder: "me", Fencing: 7}, true, false},
		{"held by another", []any{int64(0), "7", "other"}, Term{Holder: "other", Fencing: 7}, false, false},
		{"refusal without holder", []any{int64(0), "7"}, Term{}, false, true},
		{"holder not a string", []any{int64(0), "7", int64(3)}, Term{}, false, true},
		{"too short", []any{int64(1)}, Term{}, false, true},
		{"empty", nil, Term{}, false, true},
		{"bad fencing", []any{int64(1), "x"}, Term{}, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			term, ok, err := parseAcquireReply(c.reply, "me")
			if (err != nil) != c.errors || term != c.want || ok != c.ok {
				t.Fatalf("parseAcquireReply(%v) = %+v, %v, %v; want %+v, %v, error %v", c.reply, term, ok, err, c.want, c.ok, c.errors)
			}
		})
	}
}
