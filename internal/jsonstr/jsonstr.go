// Package jsonstr writes JSON string literals (RFC 8259 section 7) without
// reflection or allocation, byte for byte as encoding/json writes a string
// with HTML escaping off (json.Encoder.SetEscapeHTML(false)): the socketio
// encoder and the bus's field splicing both use it on hot paths.
//
//	buf = jsonstr.Append(buf, "héllo \"world\"") // "héllo \"world\""
package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Append appends s to dst as a JSON string and returns the extended buffer.
// Quotes, backslashes and control characters are escaped (\b \f \n \r \t by
// name, the rest as \u00XX), as are U+2028 and U+2029 (encoding/json does, for
// JavaScript source); each byte of invalid UTF-8 becomes \ufffd, so the output
// is always valid UTF-8; everything else is copied as is. No HTML escaping of
// < > &: the output goes to WebSockets and Redis, never into a page.
func Append(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
