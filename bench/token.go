package bench

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenClaims are PROTOCOL.md's JWT claims: sub (the user), exp, and the RTM
// profiles the user operates.
type tokenClaims struct {
	Profiles []string `json:"profiles,omitempty"`
	jwt.RegisteredClaims
}

// mintToken signs an HS256 token for user, valid for ttl from now.
func mintToken(secret []byte, user string, profiles []string, ttl time.Duration, now time.Time) (string, error) {
	c := tokenClaims{
		Profiles: profiles,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
