package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/internal/nodetest"
	"github.com/anchat/realtime/internal/syncbuf"
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

// setup makes sure node and socket.io-client are installed (nodetest.Main
// has built cmd/realtime).
func setup(string) error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed (make test installs nodejs)")
	}
	if _, err := os.Stat("node_modules/socket.io-client/package.json"); err != nil {
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

// RunJS runs the scenario js/<script> with node, giving it the node's URLs,
// the API key and env, and fails the test when it exits non-zero. Its output
// (what it observed) is logged either way.
func (n *Node) RunJS(t *testing.T, script string, env map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("js", script))
	cmd.Env = append(nodetest.CleanEnv(), "URL="+n.URL, "ADMIN_URL="+n.AdminURL, "API_KEY="+apiKey)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("node %s (%.1fs):\n%s", script, time.Since(start).Seconds(), out.String())
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within 40 s", script)
	}
	if err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
}
