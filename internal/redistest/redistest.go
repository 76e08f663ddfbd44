// Package redistest starts real redis-server processes for tests, each on a
// free loopback port (never the standard 6379), and stops them when the test
// ends. Tests that need Redis call [Start]; if redis-server is not installed
// the test fails with a message naming the fix (`make test` installs it).
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process owned by a test.
type Server struct {
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
	tb   testing.TB
}

// Options tune the server.
type Options struct {
	// AOF turns on appendonly with fsync always, so a restart keeps the data.
	AOF bool
	// Port to use; 0 picks a free one.
	Port int
	// Args are added to redis-server's command line (relative paths are in
	// the server's directory).
	Args []string
}

// Start launches redis-server and waits until it answers PING. It is stopped
// with the test.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: redis-server not found in PATH (run `make test`, which installs it, or apt-get install redis-server): %v", err)
	}
	port := opts.Port
	if port == 0 {
		port = FreePort(tb)
	}
	dir := tb.TempDir()
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
		"--protected-mode", "no",
	}
	if opts.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, opts.Args...)
	s := &Server{Port: port, Dir: dir, args: append([]string{bin}, args...), tb: tb}
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

// Client starts a redis-server with the default options, as [Start], and
// returns a client to it; both end with the test. It is for tests that need
// only a fresh Redis, not the server itself (to kill, pause or restart it).
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	return Start(tb, Options{}).Client()
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is redis://host:port/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a go-redis client closed with the test.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) start() {
	s.tb.Helper()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(s.Addr()) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	s.tb.Fatalf("redistest: redis-server on %s did not answer PING within 10s; log: %s", s.Addr(), s.log())
}

// Kill stops the server abruptly (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port and directory (with AOF the
// data survives).
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	s.start()
}

// Pause stops the process (SIGSTOP) so clients time out; Resume continues it.
func (s *Server) Pause()  { _ = s.cmd.Process.Signal(sigStop) }
func (s *Server) Resume() { _ = s.cmd.Process.Signal(sigCont) }

// Stop shuts the server down; safe to call twice.
func (s *Server) Stop() { s.Kill() }

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(b)
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("redistest: unexpected reply %q", line)
	}
	return nil
}

var prefixSeq atomic.Int64

// Prefix returns a key prefix unique to this test, so suites can share a server.
func Prefix(tb testing.TB) string {
	return fmt.Sprintf("t%d_%d", os.Getpid(), prefixSeq.Add(1))
}

// WaitReady pings through go-redis until it answers or ctx ends.
func WaitReady(ctx context.Context, c redis.UniversalClient) error {
	for {
		if err := c.Ping(ctx).Err(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// OnEachDeployment runs f twice, as subtests: "Single" with a client of a
// fresh redis-server ([Client]) and "Cluster" with a client of a one-node
// Redis Cluster ([StartCluster]), so a contract suite holds on both and the
// cluster's slot rules (CROSSSLOT, one slot a script) are checked.
func OnEachDeployment(t *testing.T, f func(t *testing.T, c redis.UniversalClient)) {
	t.Helper()
	t.Run("Single", func(t *testing.T) { f(t, Client(t)) })
	t.Run("Cluster", func(t *testing.T) { f(t, StartCluster(t)) })
}

// StartCluster runs a one-node Redis Cluster owning every slot. Slot rules
// (CROSSSLOT, keys of one script in one slot) hold as on a real cluster.
func StartCluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found: %v", err)
	}
	port := FreePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		// The cluster bus port defaults to port+10000, which may be taken
		// or past 65535 for a free port picked at random: pick one too.
		"--cluster-port", strconv.Itoa(FreePort(t)),
		"--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node := redis.NewClient(&redis.Options{Addr: addr})
	defer node.Close()
	if err := WaitReady(ctx, node); err != nil {
		t.Fatal(err)
	}
	if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		info, err := node.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster not ok: %v %q", err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
