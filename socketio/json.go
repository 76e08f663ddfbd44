package socketio

import "encoding/binary"

// A small JSON (RFC 8259) toolkit that neither decodes nor allocates: enough
// to find the elements of an EVENT/ACK array (strings are written by
// internal/jsonstr).

// MaxJSONDepth bounds the nesting of arrays and objects the parsers follow
// (the event array itself counts as one level), so a frame of "[[[[..."
// cannot run the stack deep: deeper payloads are ErrJSON. socket.io-client
// payloads nest a handful of levels.
const MaxJSONDepth = 64

// isSpace reports JSON insignificant whitespace (RFC 8259 section 2).
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i]
// (RFC 8259 section 3). depth is the number of arrays and objects already
// open around it. It validates the grammar, not the UTF-8 of strings (frames
// are checked whole by ParseEngine).
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, ErrJSON
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i)
	case '{':
		return skipContainer(b, i, depth+1, true)
	case '[':
		return skipContainer(b, i, depth+1, false)
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		if c == '-' || isDigit(c) {
			return skipNumber(b, i)
		}
		return i, ErrJSON
	}
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, ErrJSON
	}
	return i + len(lit), nil
}

// skipNumber: RFC 8259 section 6, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit(b[i]):
		i = skipDigits(b, i)
	default:
		return i, ErrJSON
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return i, ErrJSON
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return i, ErrJSON
		}
		i = j
	}
	return i, nil
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// plainStringByte[c] is true for the bytes a JSON string holds as they are:
// not the quote, not the backslash, not a control character.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	ones8 = 0x0101010101010101
	high8 = 0x8080808080808080
)

// hasSpecialByte reports whether any of the eight bytes in x is a quote, a
// backslash or a control character (the "has zero byte" and "has byte less
// than n" tests of Bit Twiddling Hacks, exact as a yes/no answer).
func hasSpecialByte(x uint64) bool {
	q := x ^ (ones8 * '"')
	bs := x ^ (ones8 * '\\')
	return ((x-ones8*0x20)&^x|(q-ones8)&^q|(bs-ones8)&^bs)&high8 != 0
}

// skipString: RFC 8259 section 7. b[i] is the opening quote.
func skipString(b []byte, i int) (int, error) {
	i++
	for {
		// Eight bytes at a time while none of them needs a look.
		for len(b)-i >= 8 && !hasSpecialByte(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && plainStringByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, ErrJSON
		}
		switch b[i] {
		case '"':
			return i + 1, nil
		case '\\':
			if i+1 >= len(b) {
				return i, ErrJSON
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, ErrJSON
				}
				i += 6
			default:
				return i, ErrJSON
			}
		default: // control characters must be escaped
			return i, ErrJSON
		}
	}
}

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipContainer skips an array (RFC 8259 section 5) or, when object, an
// object (section 4, members "name": value). b[i] is '[' or '{'; depth
// counts it.
func skipContainer(b []byte, i, depth int, object bool) (int, error) {
	end := byte(']')
	if object {
		end = '}'
	}
	if depth > MaxJSONDepth {
		return i, ErrJSON
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == end {
		return i + 1, nil
	}
	for {
		var err error
		if object {
			if i, err = skipMemberName(b, i); err != nil {
				return i, err
			}
		}
		if i, err = skipValue(b, i, depth); err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, ErrJSON
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case end:
			return i + 1, nil
		default:
			return i, ErrJSON
		}
	}
}

// skipMemberName skips an object member's name, the colon and the space
// around it: b[i] must be the name's opening quote.
func skipMemberName(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return i, ErrJSON
	}
	i, err := skipString(b, i)
	if err != nil {
		return i, err
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, ErrJSON
	}
	return skipSpace(b, i+1), nil
}
