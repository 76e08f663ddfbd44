// Package nodetest runs cmd/realtime as real processes for the end-to-end
// tests of e2e and bench: it builds the binary once per test binary, starts
// nodes on free loopback ports, waits until their admin listener answers,
// and at the end of the test stops them with SIGTERM, checks that they
// drained and exited 0, and prints their logs if the test failed.
//
//	func TestMain(m *testing.M) { nodetest.Main(m, nil) }
//
//	func TestX(t *testing.T) {
//		n := nodetest.Start(t, nodetest.Config{Args: []string{"--dev"}})
//		... dial n.Addr, call n.AdminURL ...
//	}
package nodetest

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/internal/syncbuf"
)

// module is the import path the commands are built from, so a build works
// from any package directory of the module.
const module = "github.com/anchat/realtime"

var (
	binPath  string // cmd/realtime, built by Main
	setupErr error  // why Main could not prepare; Require fails every test with it
)

// Main is a TestMain: unless -short, it builds cmd/realtime into a
// temporary directory and calls setup (if not nil) with that directory for
// what else the package needs (another binary, npm packages); then it runs
// the tests and removes the directory. A build or setup error fails every
// test that calls Require or Start, with the reason.
func Main(m *testing.M, setup func(dir string) error) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "realtime-nodetest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodetest:", err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if !testing.Short() {
			binPath, setupErr = Build(dir, "cmd/realtime")
			if setupErr == nil && setup != nil {
				setupErr = setup(dir)
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// Build compiles the module's command cmd (e.g. "cmd/rtmsim") into dir and
// returns the binary's path.
func Build(dir, cmd string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, path.Base(cmd))
	if out, err := exec.Command(goBin, "build", "-o", bin, module+"/"+cmd).CombinedOutput(); err != nil {
		return "", fmt.Errorf("nodetest: go build ./%s: %v\n%s", cmd, err, out)
	}
	return bin, nil
}

// Require skips the test in -short mode and fails it when Main could not
// build or set up.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

// FreePort returns a loopback port that was free a moment ago (never 6379).
func FreePort(t testing.TB) int { return redistest.FreePort(t) }

// CleanEnv is the test's environment without REALTIME_*: a developer's own
// settings must not change what the tests run.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REALTIME_") {
			env = append(env, kv)
		}
	}
	return env
}

// Config is what one node is started with.
type Config struct {
	// Args follow the harness's own (serve, --addr, --admin-addr, --node-id),
	// so they may override them.
	Args []string
	// Env is added to CleanEnv (secrets: REALTIME_JWT_SECRET=...).
	Env []string
	// ReadyPath is the admin path that must answer 200 before Start returns;
	// default /healthz.
	ReadyPath string
}

// Node is one realtime process started by a test.
type Node struct {
	URL      string // http://127.0.0.1:<port>: what socket.io-client is given
	Addr     string // 127.0.0.1:<port>
	AdminURL string // http://127.0.0.1:<admin port>
	Args     []string

	cmd    *exec.Cmd
	logs   *syncbuf.Buffer
	exited chan struct{} // closed once the process has ended and the fields below are set
	// Set before exited is closed, read only after.
	err      error     // Wait's result
	code     int       // exit status (-1: killed by a signal)
	exitedAt time.Time // when it ended
	mayExit  atomic.Bool
}

var nodeIDClean = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// Start starts a node on free loopback ports, waits until cfg.ReadyPath
// answers 200, and stops it with SIGTERM when the test ends: the test fails
// if the node exited by itself during the test or did not exit 0 after
// SIGTERM (unless ExpectExit was called), and the node's logs are printed if
// the test failed. A port taken between its pick and the node's bind is
// retried.
func Start(t *testing.T, cfg Config) *Node {
	t.Helper()
	Require(t)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		n, err := start(t, cfg)
		if err == nil {
			return n
		}
		lastErr = err
		if !strings.Contains(n.Logs(), "address already in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return nil
}

func start(t *testing.T, cfg Config) (*Node, error) {
	port, admin := FreePort(t), FreePort(t)
	n := &Node{
		Addr:     fmt.Sprintf("127.0.0.1:%d", port),
		URL:      fmt.Sprintf("http://127.0.0.1:%d", port),
		AdminURL: fmt.Sprintf("http://127.0.0.1:%d", admin),
		logs:     &syncbuf.Buffer{},
		exited:   make(chan struct{}),
	}
	n.Args = append([]string{"serve",
		"--addr", n.Addr,
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", admin),
		"--node-id", fmt.Sprintf("t-%s-%d", strings.ToLower(nodeIDClean.ReplaceAllString(t.Name(), "-")), port),
	}, cfg.Args...)
	n.cmd = exec.Command(binPath, n.Args...)
	n.cmd.Env = append(CleanEnv(), cfg.Env...)
	n.cmd.Stdout = n.logs
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		return n, fmt.Errorf("nodetest: start realtime: %w", err)
	}
	go func() { // ends with the process
		n.err = n.cmd.Wait()
		n.exitedAt = time.Now()
		n.code = n.cmd.ProcessState.ExitCode()
		close(n.exited)
	}()

	ready := cfg.ReadyPath
	if ready == "" {
		ready = "/healthz"
	}
	deadline := time.Now().Add(15 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-n.exited:
			return n, fmt.Errorf("nodetest: node exited before %s answered (%v): realtime %s\n%s", ready, n.err, strings.Join(n.Args, " "), n.Logs())
		default:
		}
		resp, err := client.Get(n.AdminURL + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			n.Kill()
			return n, fmt.Errorf("nodetest: node did not answer %s within 15 s: realtime %s\n%s", ready, strings.Join(n.Args, " "), n.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { n.stop(t) })
	return n, nil
}

// PID is the node's process id.
func (n *Node) PID() int { return n.cmd.Process.Pid }

// Logs returns what the node has written so far (stdout and stderr).
func (n *Node) Logs() string { return n.logs.String() }

// ExpectExit tells the harness the test signals or kills this node itself:
// an exit during the test is not a failure, and any exit status is accepted.
func (n *Node) ExpectExit() { n.mayExit.Store(true) }

// Signal sends sig to the node's process.
func (n *Node) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("nodetest: signal %v: %v", sig, err)
	}
}

// Exited is closed once the process has ended; Err and ExitedAt are valid then.
func (n *Node) Exited() <-chan struct{} { return n.exited }

// Err is the process's Wait result, once Exited is closed (nil: exit 0).
func (n *Node) Err() error { return n.err }

// ExitedAt is when the process ended, once Exited is closed.
func (n *Node) ExitedAt() time.Time { return n.exitedAt }

// WaitExit waits up to within for the process to end and returns its exit
// status (-1: killed by a signal); exited is false when it still runs.
func (n *Node) WaitExit(within time.Duration) (code int, exited bool) {
	select {
	case <-n.exited:
		return n.code, true
	case <-time.After(max(within, 0)):
		return 0, false
	}
}

// Kill ends the process with SIGKILL and waits for it.
func (n *Node) Kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// stop sends SIGTERM and expects the node to drain and exit 0 in time; it
// prints the node's logs when the test failed.
func (n *Node) stop(t *testing.T) {
	select {
	case <-n.exited:
		if !n.mayExit.Load() {
			t.Errorf("nodetest: node exited by itself during the test: %v", n.err)
		}
	default:
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
			if n.err != nil && !n.mayExit.Load() {
				t.Errorf("nodetest: node exited with %v after SIGTERM (want 0)", n.err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("nodetest: node did not exit within 15 s of SIGTERM; killing it")
			n.Kill()
		}
	}
	if t.Failed() {
		t.Logf("node logs (realtime %s):\n%s", strings.Join(n.Args, " "), n.Logs())
	}
}
