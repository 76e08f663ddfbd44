package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Bounds on what a token may carry (docs/SECURITY.md). The user id and
// profile ids become Redis keys, log fields and payload fields, so they obey
// the same rule as every other id (validID); the name is copied into every
// message the user sends.
const (
	maxTokenBytes   = 16 << 10 // longer tokens are refused before parsing
	maxProfiles     = 100      // entries of the profiles claim
	maxNameChars    = 128      // characters of the name claim (and of a server API senderName)
	maxSubjectBytes = maxIDLen // bytes of sub (validID)
)

// claims are the JWT claims of PROTOCOL.md section 1.
type claims struct {
	jwt.RegisteredClaims
	Profiles []string `json:"profiles,omitempty"`
	Name     string   `json:"name,omitempty"`
}

// UnmarshalJSON refuses the time claims in any form but a JSON number:
// golang-jwt's NumericDate also takes a string holding a number, which RFC
// 7519 (section 2, "NumericDate") does not allow.
func (c *claims) UnmarshalJSON(b []byte) error {
	var times struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(b, &times); err != nil {
		return fmt.Errorf("node: claims: %w", err)
	}
	for name, raw := range map[string]json.RawMessage{"exp": times.Exp, "nbf": times.Nbf, "iat": times.Iat} {
		if len(raw) > 0 && (raw[0] == '"' || raw[0] == '[' || raw[0] == '{') {
			return fmt.Errorf("node: claims: %s must be a number", name)
		}
	}
	type plain claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// check applies the bounds above to verified claims.
func (c *claims) check() error {
	switch {
	case c.Subject == "":
		return errors.New("token has no sub claim")
	case !validID(c.Subject):
		return fmt.Errorf("sub must be 1 to %d bytes of UTF-8 without spaces, control characters or braces", maxSubjectBytes)
	case len(c.Profiles) > maxProfiles:
		return fmt.Errorf("profiles has %d entries; the limit is %d", len(c.Profiles), maxProfiles)
	case !validName(c.Name):
		return fmt.Errorf("name must be at most %d characters of UTF-8 without control characters", maxNameChars)
	}
	for _, p := range c.Profiles {
		if !validID(p) {
			return fmt.Errorf("profiles must hold ids of 1 to %d bytes without spaces, control characters or braces", maxIDLen)
		}
	}
	return nil
}

// validName accepts display names of at most maxNameChars characters of
// valid UTF-8 without control characters (empty is allowed).
func validName(s string) bool {
	if len(s) > maxNameChars*utf8.UTFMax || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxNameChars {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// identity is an authenticated user.
type identity struct {
	userID   string
	name     string
	profiles []string
	expires  time.Time
}

// Refusal codes of PROTOCOL.md section 1.
const (
	codeAuthRequired    = "AUTH_REQUIRED"
	codeAuthInvalid     = "AUTH_INVALID"
	codeAuthExpired     = "AUTH_EXPIRED"
	codeConnectionLimit = "CONNECTION_LIMIT"
	codeNodeFull        = "NODE_FULL"
	codeRateLimited     = "RATE_LIMITED"
	codeUnavailable     = "UNAVAILABLE"
	codeDraining        = "DRAINING"
)

// authError is a refused token, carrying its wire code.
type authError struct {
	code string
	err  error
}

func (e *authError) Error() string { return e.code + ": " + e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// verifier checks tokens with a pinned algorithm and a typed key.
type verifier struct {
	parser *jwt.Parser
	key    any // []byte, *rsa.PublicKey or *ecdsa.PublicKey
	now    func() time.Time
	parsed atomic.Uint64 // tokens parsed and checked (the costly part), for tests
}

func newVerifier(cfg JWTConfig, now func() time.Time) *verifier {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{cfg.Alg}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v := &verifier{parser: jwt.NewParser(opts...), now: now}
	if cfg.Alg == "HS256" {
		v.key = cfg.Secret
	} else {
		v.key = cfg.PublicKey
	}
	return v
}

// verify returns the token's identity or an *authError.
func (v *verifier) verify(token string) (identity, error) {
	if token == "" {
		return identity{}, &authError{codeAuthRequired, errors.New("no token")}
	}
	if len(token) > maxTokenBytes {
		return identity{}, &authError{codeAuthInvalid, fmt.Errorf("token is longer than %d bytes", maxTokenBytes)}
	}
	v.parsed.Add(1)
	var cl claims
	_, err := v.parser.ParseWithClaims(token, &cl, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		// Claims are filled even on failure: use them only when err == nil.
		if errors.Is(err, jwt.ErrTokenExpired) {
			return identity{}, &authError{codeAuthExpired, err}
		}
		return identity{}, &authError{codeAuthInvalid, err}
	}
	if err := cl.check(); err != nil {
		return identity{}, &authError{codeAuthInvalid, err}
	}
	return identity{userID: cl.Subject, name: cl.Name, profiles: cl.Profiles, expires: cl.ExpiresAt.Time}, nil
}
