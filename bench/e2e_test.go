package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/nodetest"
	"github.com/anchat/realtime/rtm/rtmsim"
	"github.com/anchat/realtime/rtm/rtmsim/rtmsimtest"
)

// End-to-end runs of every scenario against real node processes built from
// ./cmd/realtime, with small sizes; the rtm scenario's provider is the
// simulator of rtm/rtmsim served in-process (compiled into this test binary,
// so it cannot be missing).

// workerEnv makes the test binary act as a bench worker (for --procs > 1).
const workerEnv = "BENCH_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(Main(context.Background(), []string{"--worker"}, os.Stdin, os.Stdout, os.Stderr))
	}
	nodetest.Main(m, nil)
}

// loadFlags are the limits a load run needs (the defaults allow 30 messages
// a minute per user).
var loadFlags = []string{"--limit-messages", "100000000", "--limit-typing", "100000000", "--limit-joins", "100000000",
	"--limit-connects", "100000000", "--max-user-connections", "100000", "--max-connections", "20000", "--max-pending-handshakes", "20000", "--max-pending-handshakes-per-ip", "20000"}

// startNode starts a node in dev mode with the load limits (nodetest.Start);
// extra flags come last.
func startNode(t *testing.T, extra ...string) *nodetest.Node {
	t.Helper()
	args := append([]string{"--dev", "--log-level", "warn", "--drain-period", "100ms"}, loadFlags...)
	return nodetest.Start(t, nodetest.Config{Args: append(args, extra...), ReadyPath: "/readyz"})
}

// run runs cfg against nodes and returns the result; the table is logged.
func run(t *testing.T, cfg Config, opts Options) (*Result, error) {
	t.Helper()
	cfg.JWTSecret = "dev-secret"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg, opts)
	if res != nil {
		var b strings.Builder
		_ = WriteTable(&b, res)
		t.Logf("\n%s", b.String())
	}
	return res, err
}

// mustPass returns a checker for run's results: mustPass(t)(run(...)).
func mustPass(t *testing.T) func(*Result, error) *Result {
	return func(res *Result, err error) *Result {
		t.Helper()
		if err != nil {
			t.Fatalf("run failed: %v", err)
		}
		if !res.OK {
			t.Fatalf("run not OK: %v", res.Failures)
		}
		return res
	}
}

// checkDeliveries asserts the figures of a message scenario add up.
func checkDeliveries(t *testing.T, res *Result, perSend int64) {
	t.Helper()
	l := res.Load
	if l.Sent == 0 {
		t.Fatal("nothing sent")
	}
	if l.Expected != l.Sent*perSend {
		t.Errorf("expected %d deliveries, want sent %d × %d", l.Expected, l.Sent, perSend)
	}
	if l.Received != l.Expected || l.Lost != 0 || l.Duplicates != 0 || l.Misrouted != 0 || l.Malformed != 0 {
		t.Errorf("received %d of %d, lost %d, dups %d, misrouted %d, malformed %d", l.Received, l.Expected, l.Lost, l.Duplicates, l.Misrouted, l.Malformed)
	}
	if res.Latency.Count == 0 || res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency summary %+v", res.Latency)
	}
	if res.Generator.CPUSeconds <= 0 {
		t.Errorf("generator CPU %v", res.Generator.CPUSeconds)
	}
}

func TestE2EIdle(t *testing.T) {
	n := startNode(t)
	res := mustPass(t)(run(t, Config{Scenario: ScenarioIdle, Targets: []string{n.Addr}, Conns: 60, Duration: Duration(time.Second),
		ServerPIDs: []int{n.PID()}, MetricsURLs: []string{n.AdminURL + "/metrics"}}, Options{}))
	if res.Connect.OK != 60 || res.Connect.Held != 60 || res.Connect.Failed != 0 || res.Connect.PerSecond <= 0 {
		t.Fatalf("connect %+v", res.Connect)
	}
	if len(res.Servers.Each) != 1 {
		t.Fatalf("servers %+v", res.Servers)
	}
	s := res.Servers.Each[0]
	if s.RSSHeld <= 0 || s.GoroutinesHeld <= 0 || s.Connections != 60 {
		t.Fatalf("server figures %+v", s)
	}
	if res.Servers.GoroutinesPerConn < -0.5 || res.Servers.GoroutinesPerConn > 3 {
		t.Fatalf("goroutines per connection %v", res.Servers.GoroutinesPerConn)
	}
}

func TestE2EFanout(t *testing.T) {
	n := startNode(t)
	res := mustPass(t)(run(t, Config{Scenario: ScenarioFanout, Targets: []string{n.Addr}, Conns: 100, Rate: 40,
		Duration: Duration(1500 * time.Millisecond), ServerPIDs: []int{n.PID()}}, Options{}))
	checkDeliveries(t, res, 100)
	if res.Servers.CPUPerDeliveryUs <= 0 {
		t.Errorf("server CPU per delivery %v", res.Servers.CPUPerDeliveryUs)
	}
	if len(res.Series) == 0 {
		t.Error("no time series")
	}
}

// Two worker processes (the test binary re-executed as a worker) reading
// with a goroutine per connection, over two source addresses.
func TestE2EFanoutProcsGoroutine(t *testing.T) {
	n := startNode(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{WorkerCommand: func(int) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), workerEnv+"=1")
		return cmd
	}}
	res := mustPass(t)(run(t, Config{Scenario: ScenarioFanout, Targets: []string{n.Addr}, Conns: 80, Rate: 40, Procs: 2, IO: IOGoroutine,
		LocalIPs: []string{"127.0.0.2", "127.0.0.3"}, Duration: Duration(1500 * time.Millisecond)}, opts))
	checkDeliveries(t, res, 80)
	if res.Generator.Procs != 2 {
		t.Fatalf("procs %d", res.Generator.Procs)
	}
}

func TestE2EChat(t *testing.T) {
	n := startNode(t)
	res := mustPass(t)(run(t, Config{Scenario: ScenarioChat, Targets: []string{n.Addr}, Conns: 100, ChatSize: 10, Rate: 200,
		Duration: Duration(1500 * time.Millisecond), Strict: true}, Options{}))
	checkDeliveries(t, res, 10)
}

func TestE2ETyping(t *testing.T) {
	n := startNode(t)
	res := mustPass(t)(run(t, Config{Scenario: ScenarioTyping, Targets: []string{n.Addr}, Conns: 40, ChatSize: 5, Rate: 100,
		Duration: Duration(1500 * time.Millisecond)}, Options{}))
	checkDeliveries(t, res, 4)
}

func TestE2EReconnect(t *testing.T) {
	n := startNode(t)
	res := mustPass(t)(run(t, Config{Scenario: ScenarioReconnect, Targets: []string{n.Addr}, Conns: 100, ReconnectFraction: 0.5,
		ReconnectTimeout: Duration(20 * time.Second)}, Options{}))
	r := res.Reconnect
	if r == nil || r.Dropped != 50 || r.Back != 50 || r.AllBackSeconds < 0 || r.Latency.Count != 50 {
		t.Fatalf("reconnect %+v", r)
	}
	if res.Connect.OK != 100 {
		t.Fatalf("initial connections %+v", res.Connect)
	}
}

// Two independent nodes (embedded engines, no Redis) share no chat: a
// fanout over both loses every delivery owed to the second node's members,
// and the run must say so and fail.
func TestE2ELossIsReported(t *testing.T) {
	a, b := startNode(t), startNode(t)
	res, err := run(t, Config{Scenario: ScenarioFanout, Targets: []string{a.Addr, b.Addr}, Conns: 40, Rate: 20,
		Duration: Duration(time.Second), Drain: Duration(2 * time.Second)}, Options{})
	if !errors.Is(err, ErrLoss) {
		t.Fatalf("err %v, want ErrLoss", err)
	}
	if res.OK || res.Load.Lost != res.Load.Sent*20 || res.Load.Received != res.Load.Sent*20 {
		t.Fatalf("lost %d received %d of sent %d × 40", res.Load.Lost, res.Load.Received, res.Load.Sent)
	}
	if !strings.Contains(strings.Join(res.Failures, "\n"), "LOST") {
		t.Fatalf("failures %q", res.Failures)
	}
}

// The rtm scenario against rtmsim (no generated events: the scenario emits
// its own through the control API) and a node bridging it.
func TestE2ERTM(t *testing.T) {
	nodetest.Require(t)
	sim := rtmsimtest.Start(t, rtmsim.Config{})
	n := startNode(t, "--rtm-url", sim.WSURL())
	res := mustPass(t)(run(t, Config{Scenario: ScenarioRTM, Targets: []string{n.Addr}, Conns: 30, Profiles: 3, Rate: 30,
		Duration: Duration(time.Second), RTMControlURL: sim.URL, APIURL: n.AdminURL, APIKey: "dev-api-key"}, Options{}))
	checkDeliveries(t, res, 10)
}
