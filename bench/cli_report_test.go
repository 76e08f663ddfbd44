package bench

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"
)

// TestHelpPrintedOnce: --help prints the usage once, on stdout.
func TestHelpPrintedOnce(t *testing.T) {
	var out, errb strings.Builder
	if code := Main(context.Background(), []string{"--help"}, strings.NewReader(""), &out, &errb); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if n := strings.Count(out.String(), "Usage: bench"); n != 1 {
		t.Errorf("usage printed %d times on stdout", n)
	}
	if errb.Len() != 0 {
		t.Errorf("stderr: %q", errb.String())
	}
}

// TestProgressSecondsNeverNegative: before the scheduled start of the load
// the line counts from the start of the run.
func TestProgressSecondsNeverNegative(t *testing.T) {
	started := time.Unix(1000, 0)
	startAt := started.Add(3 * time.Second)
	for _, c := range []struct {
		now  time.Time
		want float64
	}{
		{startAt.Add(-100 * time.Millisecond), 2.9}, // was -0.1
		{startAt, 0},
		{startAt.Add(1500 * time.Millisecond), 1.5},
	} {
		if got := progressSeconds(c.now, started, startAt); got < 0 || got-c.want > 1e-9 || c.want-got > 1e-9 {
			t.Errorf("at %v: %v, want %v", c.now.Sub(started), got, c.want)
		}
	}
	if got := progressSeconds(started.Add(time.Second), started, time.Time{}); got != 1 {
		t.Errorf("no load yet: %v", got)
	}
}

func TestServerVersionFromMetrics(t *testing.T) {
	for text, want := range map[string]string{
		"go_info{version=\"go1.25.1\"} 1\nrealtime_build_info{go=\"go1.25.1\",version=\"v1.2.3\"} 1\nrealtime_connections 5\n": "realtime v1.2.3 (go1.25.1)",
		"go_info{version=\"go1.24.0\"} 1\n":                                       "go1.24.0",
		"nodejs_version_info{version=\"v20.11.0\",major=\"20\",minor=\"11\"} 1\n": "node v20.11.0",
		"process_cpu_seconds_total 1\n":                                           "",
	} {
		m, info, err := parseMetrics(bufio.NewScanner(strings.NewReader(text)))
		if err != nil {
			t.Fatal(err)
		}
		if got := serverVersion(info); got != want {
			t.Errorf("%q: version %q, want %q", text, got, want)
		}
		if strings.Contains(text, "realtime_connections") && m["realtime_connections"] != 5 {
			t.Errorf("unlabelled samples lost: %v", m)
		}
	}
}

func TestCommandLineHidesSecrets(t *testing.T) {
	got := commandLine([]string{"--scenario", "chat", "--jwt-secret", "s3cret", "--api-key=k3y", "--targets", "a:1,b:2", "--report", "my report.html"})
	want := "bench --scenario chat --jwt-secret … --api-key=… --targets a:1,b:2 --report 'my report.html'"
	if got != want {
		t.Fatalf("%s\nwant %s", got, want)
	}
}

// TestWriteHTMLRunContext: the report says how the run was made and where:
// the command line, the flags, the machine and each server's version; sends
// and deliveries have charts of their own.
func TestWriteHTMLRunContext(t *testing.T) {
	r := &Result{Scenario: ScenarioFanout, Config: Config{RunID: "r1", Targets: []string{"127.0.0.1:1"}}, Started: time.Now(), OK: true,
		Command: "bench --scenario fanout --rate 200", Flags: map[string]string{"rate": "200", "scenario": "fanout"},
		Machine: Machine{CPU: "Example CPU @ 3GHz", Cores: 2, GOMAXPROCS: 2, Go: "go1.25.1", OS: "linux/amd64"},
		Servers: ServersResult{Each: []ServerResult{{Name: "pid 42", Version: "realtime v1.2.3 (go1.25.1)"}}}}
	for i := range 5 {
		r.Series = append(r.Series, Point{T: float64(i), SentPerSec: 200, RecvPerSec: 400000})
	}
	var b strings.Builder
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"bench --scenario fanout --rate 200", "--rate=200", "--scenario=fanout", "Example CPU @ 3GHz",
		"2 logical CPUs", "go1.25.1", "linux/amd64", "pid 42", "realtime v1.2.3"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, fig := range strings.Split(html, "<figure>")[1:] {
		if strings.Contains(fig, ">sent<") && strings.Contains(fig, ">delivered<") {
			t.Error("sent and delivered share a chart (and an axis)")
		}
	}
	if strings.Contains(html, "overflow:auto") {
		t.Error("the text block scrolls inside a clipped box")
	}
}
