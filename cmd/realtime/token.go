package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/internal/flaglist"
)

// tokenClaims are the claims of PROTOCOL.md section 1 ("JWT claims").
type tokenClaims struct {
	Profiles []string `json:"profiles,omitempty"`
	Name     string   `json:"name,omitempty"`
	jwt.RegisteredClaims
}

// tokenSpec describes a token to mint.
type tokenSpec struct {
	User     string
	Profiles []string
	Name     string
	TTL      time.Duration
	Issuer   string
	Audience string
}

// mintToken signs an HS256 JWT for spec with secret, issued at now.
func mintToken(secret []byte, spec tokenSpec, now time.Time) (string, error) {
	if spec.User == "" {
		return "", errors.New("a user id is required")
	}
	if spec.TTL <= 0 {
		return "", fmt.Errorf("ttl %v must be positive", spec.TTL)
	}
	if len(secret) == 0 {
		return "", errors.New("empty secret")
	}
	c := tokenClaims{
		Profiles: spec.Profiles,
		Name:     spec.Name,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   spec.User,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(spec.TTL)),
			Issuer:    spec.Issuer,
		},
	}
	if spec.Audience != "" {
		c.Audience = jwt.ClaimStrings{spec.Audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// cmdToken implements `realtime token`.
func (a *app) cmdToken(args []string) int {
	var o tokenOptions
	f := tokenFlags(&o)
	if code, done := a.parseFlags(f, args); done {
		return code
	}
	if o.User == "" {
		return a.usageError("token", "--user is required")
	}
	s, err := resolveSecret(f, o.JWTSecretFile, "jwt-secret-file", envJWTSecret, a.getenv)
	if err != nil {
		return a.usageError("token", err.Error())
	}
	if s.value == "" {
		if !o.Dev {
			return a.usageError("token", fmt.Sprintf("no JWT secret: set %s or --jwt-secret-file (or use --dev for dev-secret)", envJWTSecret))
		}
		s.value = devJWTSecret
	}
	tok, err := mintToken([]byte(s.value), tokenSpec{
		User:     o.User,
		Profiles: flaglist.Split(o.Profiles),
		Name:     o.Name,
		TTL:      o.TTL,
		Issuer:   o.JWTIssuer,
		Audience: o.JWTAudience,
	}, a.now())
	if err != nil {
		return a.usageError("token", err.Error())
	}
	fmt.Fprintln(a.stdout, tok)
	return 0
}
