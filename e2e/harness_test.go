package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The secrets every test node runs with (REALTIME_JWT_SECRET, REALTIME_API_KEY).
const (
	jwtSecret = "e2e-secret"
	apiKey    = "e2e-api-key"
)

var (
	binPath  string // the realtime binary built by TestMain
	setupErr error  // why TestMain could not prepare; every test fails with it
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "realtime-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	if !testing.Short() {
		setupErr = setup(dir)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup builds cmd/realtime into dir and makes sure socket.io-client and
// puppeteer-core are installed.
func setup(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	binPath = filepath.Join(dir, "realtime")
	build := exec.Command(goBin, "build", "-o", binPath, "./cmd/realtime")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/realtime: %v\n%s", err, out)
	}
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

// requireE2E skips in -short mode and fails when setup failed.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

// syncBuffer collects a process's output from two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Node is one realtime process started by a test.
type Node struct {
	URL      string // http://127.0.0.1:<port>: what socket.io-client is given
	Addr     string // 127.0.0.1:<port>
	AdminURL string // http://127.0.0.1:<admin port>
	Args     []string

	cmd      *exec.Cmd
	logs     *syncBuffer
	exited   chan struct{}
	err      error     // Wait's result, once exited is closed
	code     int       // exit status once exited is closed (-1: killed by a signal)
	exitedAt time.Time // when it ended, once exited is closed
	mayExit  atomic.Bool
}

// expectExit tells the harness the test signals or kills this node itself:
// an exit during the test is not a failure, and any exit status is accepted.
func (n *Node) expectExit() { n.mayExit.Store(true) }

// signal sends sig to the node's process.
func (n *Node) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits up to within for the process to end and returns its exit
// status; exited is false when it still runs. exitedAt tells when it ended.
func (n *Node) waitExit(within time.Duration) (code int, exited bool) {
	select {
	case <-n.exited:
		return n.code, true
	case <-time.After(max(within, 0)):
		return 0, false
	}
}

// Logs returns what the node has written so far (stdout and stderr).
func (n *Node) Logs() string { return n.logs.String() }

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var nodeIDClean = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// StartNode starts a node with the e2e secrets on free loopback ports, waits
// until /healthz answers, and stops it with SIGTERM when the test ends (its
// logs are printed if the test failed). args come after the defaults, so they
// override them.
func StartNode(t *testing.T, args ...string) *Node {
	t.Helper()
	requireE2E(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		n, err := startNode(t, args)
		if err == nil {
			return n
		}
		lastErr = err
		// A port taken between freePort and the node's bind is worth a retry.
		if !strings.Contains(n.Logs(), "address already in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return nil
}

func startNode(t *testing.T, args []string) (*Node, error) {
	port, admin := freePort(t), freePort(t)
	n := &Node{
		Addr:     fmt.Sprintf("127.0.0.1:%d", port),
		URL:      fmt.Sprintf("http://127.0.0.1:%d", port),
		AdminURL: fmt.Sprintf("http://127.0.0.1:%d", admin),
		logs:     &syncBuffer{},
		exited:   make(chan struct{}),
	}
	n.Args = append([]string{"serve",
		"--addr", n.Addr,
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", admin),
		"--node-id", fmt.Sprintf("e2e-%s-%d", strings.ToLower(nodeIDClean.ReplaceAllString(t.Name(), "-")), port),
		"--log-format", "json",
		"--log-level", "debug",
		"--drain-period", "200ms",
	}, args...)
	n.cmd = exec.Command(binPath, n.Args...)
	n.cmd.Env = append(cleanEnv(), "REALTIME_JWT_SECRET="+jwtSecret, "REALTIME_API_KEY="+apiKey)
	n.cmd.Stdout = n.logs
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		return n, err
	}
	go func() {
		n.err = n.cmd.Wait()
		n.exitedAt = time.Now()
		n.code = n.cmd.ProcessState.ExitCode()
		close(n.exited)
	}()

	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
wait:
	for {
		select {
		case <-n.exited:
			return n, fmt.Errorf("node exited before /healthz answered (%v): realtime %s\n%s", n.err, strings.Join(n.Args, " "), n.Logs())
		default:
		}
		resp, err := client.Get(n.AdminURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break wait
			}
		}
		if time.Now().After(deadline) {
			n.kill()
			return n, fmt.Errorf("node did not answer /healthz within 15 s: realtime %s\n%s", strings.Join(n.Args, " "), n.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { n.stop(t) })
	return n, nil
}

// cleanEnv is the test's environment without REALTIME_* (a developer's own
// settings must not change what the tests run).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REALTIME_") {
			env = append(env, kv)
		}
	}
	return env
}

func (n *Node) kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// stop sends SIGTERM and expects the node to drain and exit 0 in time; it
// prints the node's logs when the test failed.
func (n *Node) stop(t *testing.T) {
	select {
	case <-n.exited:
		if !n.mayExit.Load() {
			t.Errorf("node exited by itself during the test: %v", n.err)
		}
	default:
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
			if n.err != nil && !n.mayExit.Load() {
				t.Errorf("node exited with %v after SIGTERM (want 0)", n.err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("node did not exit within 15 s of SIGTERM; killing it")
			n.kill()
		}
	}
	if t.Failed() {
		t.Logf("node logs (realtime %s):\n%s", strings.Join(n.Args, " "), n.Logs())
	}
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
	cmd.Env = append(cleanEnv(), "URL="+n.URL, "ADMIN_URL="+n.AdminURL, "API_KEY="+apiKey)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out syncBuffer
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
