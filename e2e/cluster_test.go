package e2e

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/internal/nodetest"
	"github.com/anchat/realtime/internal/redistest"
)

// TestClusterTwoNodesOneRedis: two nodes on one redis-server (started by the
// test on a free port) behave as one messenger.
func TestClusterTwoNodesOneRedis(t *testing.T) {
	nodetest.Require(t)
	srv := redistest.Start(t, redistest.Options{})
	prefix := redistest.Prefix(t)
	n1 := StartNode(t, "--redis-url", srv.URL(), "--redis-prefix", prefix)
	n2 := StartNode(t, "--redis-url", srv.URL(), "--redis-prefix", prefix)
	n1.RunJS(t, "cluster.mjs", map[string]string{
		"URL2":        n2.URL,
		"TOKEN_ALICE": Token(t, "alice", func(c jwt.MapClaims) { c["name"] = "Alice" }),
		"TOKEN_BOB":   Token(t, "bob"),
		"TOKEN_DAVE":  Token(t, "dave"),
	})
}
