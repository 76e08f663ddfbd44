package e2e

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/internal/redistest"
)

// TestClusterTwoNodesOneRedis: two nodes on one redis-server (started by the
// test on a free port) behave as one messenger.
func TestClusterTwoNodesOneRedis(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	n1 := StartNode(t, srv.Args()...)
	n2 := StartNode(t, srv.Args()...)
	n1.RunJS(t, "cluster.mjs", map[string]string{
		"URL2":        n2.URL,
		"TOKEN_ALICE": Token(t, "alice", func(c jwt.MapClaims) { c["name"] = "Alice" }),
		"TOKEN_BOB":   Token(t, "bob"),
		"TOKEN_DAVE":  Token(t, "dave"),
	})
}
