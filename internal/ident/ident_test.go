package ident

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"c1":                            true,
		"名前":                            true,
		strings.Repeat("a", MaxLen):     true,
		strings.Repeat("a", MaxLen+1):   false,
		"":                              false,
		"a b":                           false,
		"a\tb":                          false,
		"a\x7fb":                        false,
		"a{b":                           false,
		"a}b":                           false,
		"\xff":                          false,
		strings.Repeat("名", MaxLen/3+1): false, // 129 bytes
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}
