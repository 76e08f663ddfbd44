// Package ident is the rule every id the system keys state by follows (chat,
// user, message and RTM profile ids): 1 to MaxLen bytes of UTF-8 without
// spaces, control characters or braces (braces would break the Redis hash
// tags the ids go into).
//
//	if !ident.Valid(chatID) { ... refuse ... }
package ident

import "unicode/utf8"

// MaxLen is the longest id, in bytes.
const MaxLen = 128

// Valid reports whether s is an acceptable id.
func Valid(s string) bool {
	if s == "" || len(s) > MaxLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '{' || r == '}' {
			return false
		}
	}
	return true
}
