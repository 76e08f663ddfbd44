package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/internal/nodetest"
	"github.com/anchat/realtime/internal/redistest"
)

// The secrets every test node runs with (REALTIME_JWT_SECRET, REALTIME_API_KEY).
const (
	jwtSecret = "e2e-secret"
	apiKey    = "e2e-api-key"
)

// Node is one realtime process started by a test (internal/nodetest), with
// the scenario runner of this package.
type Node struct{ *nodetest.Node }

func TestMain(m *testing.M) { nodetest.Main(m, setup) }

// setup makes sure node, socket.io-client and puppeteer-core are installed (nodetest.Main
// has built cmd/realtime).
func setup(string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed (make test installs nodejs)")
	}
	_, errIO := os.Stat("node_modules/socket.io-client/package.json")
	_, errPuppeteer := os.Stat("node_modules/puppeteer-core/package.json")
	if err := errors.Join(errIO, errPuppeteer); err != nil {
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		if out, err := npm.CombinedOutput(); err != nil {
			return fmt.Errorf("socket.io-client is not installed and `npm ci` in e2e/ failed (run `make test` or `cd e2e && npm ci`): %v\n%s", err, out)
		}
	}
	return nil
}

// StartNode starts a node with the e2e secrets (nodetest.Start: free
// loopback ports, stopped with SIGTERM and checked when the test ends). args
// come after the defaults, so they override them.
func StartNode(t *testing.T, args ...string) *Node {
	t.Helper()
	return &Node{nodetest.Start(t, nodetest.Config{
		Args: append([]string{"--log-format", "json", "--log-level", "debug", "--drain-period", "200ms"}, args...),
		Env:  []string{"REALTIME_JWT_SECRET=" + jwtSecret, "REALTIME_API_KEY=" + apiKey},
	})}
}

// Token mints an HS256 token for sub with the e2e secret, valid one hour;
// edit adjusts the claims before signing.
func Token(t *testing.T, sub string, edit ...func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for _, e := range edit {
		e(c)
	}
	return sign(t, jwt.SigningMethodHS256, []byte(jwtSecret), c)
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testRedis is a redis-server the test's nodes share, under a key prefix of
// the test's own.
type testRedis struct {
	*redistest.Server
	Prefix string
}

// startRedis skips in -short mode (before starting anything) and starts a
// redis-server for the test.
func startRedis(t *testing.T, opts redistest.Options) *testRedis {
	t.Helper()
	nodetest.Require(t)
	return &testRedis{Server: redistest.Start(t, opts), Prefix: redistest.Prefix(t)}
}

// Args are the node flags that put its engines on r, then extra.
func (r *testRedis) Args(extra ...string) []string {
	return append([]string{"--redis-url", r.URL(), "--redis-prefix", r.Prefix}, extra...)
}
