package rtm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/anchat/realtime/internal/ident"
)

// maxProfileIDLen is the node's id limit.
const maxProfileIDLen = ident.MaxLen

// maxCookieHeader bounds the Cookie header built from a session.
const maxCookieHeader = 8 << 10

// checkProfileID refuses a profile id the node would refuse as an id
// (internal/ident: 1 to 128 bytes without spaces, control characters or
// braces).
func checkProfileID(id string) error {
	if !ident.Valid(id) {
		return fmt.Errorf("%w: %q (1 to %d characters without spaces or braces)", ErrBadProfileID, id, maxProfileIDLen)
	}
	return nil
}

// cookieHeader validates a session (the "session" value of
// PUT /api/rtm/profiles/{id}) and returns its Cookie header value. Accepted:
//
//	{"cookies": {"name": "value", ...}}   sent sorted by name: "a=1; b=2"
//	{"cookies": "a=1; b=2"}              sent as given, after validation
//
// Names are RFC 6265 tokens, values cookie-octets (optionally in double
// quotes), so nothing can smuggle a CR/LF or a second header into the
// upgrade request. Other session fields are kept but not used.
func cookieHeader(session json.RawMessage) (string, error) {
	var s struct {
		Cookies json.RawMessage `json:"cookies"`
	}
	d := json.NewDecoder(bytes.NewReader(session))
	if err := d.Decode(&s); err != nil {
		return "", fmt.Errorf("%w: must be a JSON object with \"cookies\": %v", ErrBadSession, err)
	}
	if d.More() {
		return "", fmt.Errorf("%w: trailing data after the session object", ErrBadSession)
	}
	raw := bytes.TrimSpace(s.Cookies)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", fmt.Errorf("%w: \"cookies\" is missing", ErrBadSession)
	}
	var pairs []string
	switch raw[0] {
	case '{':
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil {
			return "", fmt.Errorf("%w: \"cookies\" must map names to string values: %v", ErrBadSession, err)
		}
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if err := checkCookie(n, m[n]); err != nil {
				return "", err
			}
			pairs = append(pairs, n+"="+m[n])
		}
	case '"':
		var h string
		if err := json.Unmarshal(raw, &h); err != nil {
			return "", fmt.Errorf("%w: \"cookies\": %v", ErrBadSession, err)
		}
		for part := range strings.SplitSeq(h, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			n, v, ok := strings.Cut(part, "=")
			if !ok {
				return "", fmt.Errorf("%w: cookie %q has no '='", ErrBadSession, part)
			}
			if err := checkCookie(n, v); err != nil {
				return "", err
			}
			pairs = append(pairs, n+"="+v)
		}
	default:
		return "", fmt.Errorf("%w: \"cookies\" must be an object of name/value pairs or a \"a=b; c=d\" string", ErrBadSession)
	}
	if len(pairs) == 0 {
		return "", fmt.Errorf("%w: no cookies", ErrBadSession)
	}
	h := strings.Join(pairs, "; ")
	if len(h) > maxCookieHeader {
		return "", fmt.Errorf("%w: cookies too long (%d bytes, at most %d)", ErrBadSession, len(h), maxCookieHeader)
	}
	return h, nil
}

// checkCookie validates one cookie-pair per RFC 6265 section 4.1.1.
func checkCookie(name, value string) error {
	if name == "" {
		return fmt.Errorf("%w: empty cookie name", ErrBadSession)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("%w: cookie name %q: invalid character %q", ErrBadSession, name, name[i])
		}
	}
	v := value
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	for i := 0; i < len(v); i++ {
		if !isCookieOctet(v[i]) {
			return fmt.Errorf("%w: cookie %q: invalid character %q in value", ErrBadSession, name, v[i])
		}
	}
	return nil
}

// isTokenChar: RFC 7230 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isCookieOctet: RFC 6265 cookie-octet (US-ASCII without CTLs, whitespace,
// DQUOTE, comma, semicolon and backslash).
func isCookieOctet(c byte) bool {
	return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) ||
		(c >= 0x3C && c <= 0x5B) || (c >= 0x5D && c <= 0x7E)
}

// compactSession validates session and returns it compacted, as stored.
func compactSession(session json.RawMessage) (json.RawMessage, error) {
	if _, err := cookieHeader(session); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Compact(&b, session); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSession, err)
	}
	if b.Len() > 64<<10 {
		return nil, fmt.Errorf("%w: too large (%d bytes, at most 64 KiB)", ErrBadSession, b.Len())
	}
	return b.Bytes(), nil
}
