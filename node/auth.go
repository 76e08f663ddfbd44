package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// claims are the JWT claims of PROTOCOL.md section 1.
type claims struct {
	jwt.RegisteredClaims
	Profiles []string `json:"profiles,omitempty"`
	Name     string   `json:"name,omitempty"`
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
	var cl claims
	_, err := v.parser.ParseWithClaims(token, &cl, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil {
		// Claims are filled even on failure: use them only when err == nil.
		if errors.Is(err, jwt.ErrTokenExpired) {
			return identity{}, &authError{codeAuthExpired, err}
		}
		return identity{}, &authError{codeAuthInvalid, err}
	}
	if cl.Subject == "" {
		return identity{}, &authError{codeAuthInvalid, fmt.Errorf("token has no sub claim")}
	}
	return identity{userID: cl.Subject, name: cl.Name, profiles: cl.Profiles, expires: cl.ExpiresAt.Time}, nil
}
