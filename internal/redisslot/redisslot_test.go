package redisslot

import "testing"

// Figures from the Redis Cluster specification and CLUSTER KEYSLOT.
func TestOf(t *testing.T) {
	if got := CRC16("123456789"); got != 0x31C3 {
		t.Fatalf("CRC16(123456789) = %#x, want 0x31c3 (the specification's check value)", got)
	}
	for key, want := range map[string]uint16{
		"foo":                  12182,
		"bar":                  5061,
		"{user1000}.following": 3443,
		"{user1000}.followers": 3443,
		"user1000":             3443,
		"foo{}{bar}":           Of("foo{}{bar}"), // empty first tag: the whole key
		"foo{{bar}}zap":        Of("{bar"),
		"rt:{chat:c1}:h":       Of("chat:c1"),
	} {
		if got := Of(key); got != want {
			t.Errorf("Of(%q) = %d, want %d", key, got, want)
		}
	}
	if Of("foo{}{bar}") != CRC16("foo{}{bar}")%Count {
		t.Errorf("an empty tag must hash the whole key")
	}
}
