package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/redismetrics"
	"github.com/anchat/realtime/internal/redistest"

	"github.com/anchat/realtime/internal/syncbuf"
)

// logLines parses the JSON lines written so far.
func logLines(t *testing.T, out *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// waitLine waits for a log line with message msg and returns it.
func waitLine(t *testing.T, out *syncbuf.Buffer, msg string, d time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, l := range logLines(t, out) {
			if l["message"] == msg {
				return l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q line within %v; log:\n%s", msg, d, out)
	return nil
}

func countLines(t *testing.T, out *syncbuf.Buffer, msg string) int {
	n := 0
	for _, l := range logLines(t, out) {
		if l["message"] == msg {
			n++
		}
	}
	return n
}

// metricValue scrapes one series ("name{labels}" as exposed) from /metrics.
func metricValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", series)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestRedisOutageLinesAndMetrics runs a node on a real redis-server and
// kills it: the log has one line when the outage starts and one with its
// length when it ends (what README.md and docs/OPERATIONS.md promise), the
// Redis error counter counts unavailable pings, and the stats line carries
// the Redis round trip.
func TestRedisOutageLinesAndMetrics(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	sigs, out, _, _, done := startServe(t, env{"REALTIME_REDIS_URL": srv.URL(), "REALTIME_JWT_SECRET": "s"},
		"--log-format", "json", "--drain-period", "100ms", "--node-id", "n-outage",
		"--redis-prefix", redistest.Prefix(t), "--stats-interval", "200ms", "--log-level", "debug")
	admin, _ := waitLine(t, out, "node listening", 10*time.Second)["admin_addr"].(string)

	// Every Redis series is there from the start; the stats line times a PING.
	for _, op := range redismetrics.Ops {
		metricValue(t, admin, `realtime_redis_command_seconds_count{op="`+op+`"}`)
		for _, class := range redismetrics.Classes {
			metricValue(t, admin, `realtime_redis_errors_total{class="`+class+`",op="`+op+`"}`)
		}
	}
	metricValue(t, admin, "realtime_connections_accepted_total")
	if v := metricValue(t, admin, `realtime_build_info{go="`+runtime.Version()+`",version="`+version+`"}`); v != 1 {
		t.Errorf("realtime_build_info = %v, want 1", v)
	}
	if rtt, ok := waitLine(t, out, "stats", 5*time.Second)["redis_rtt_ms"].(float64); !ok || rtt <= 0 {
		t.Errorf("stats line without a positive redis_rtt_ms: %v", rtt)
	}
	if metricValue(t, admin, `realtime_redis_command_seconds_count{op="ping"}`) == 0 {
		t.Error("no ping round trip counted")
	}
	if n := metricValue(t, admin, `realtime_redis_errors_total{class="unavailable",op="ping"}`); n != 0 {
		t.Errorf("%v unavailable pings before the outage", n)
	}

	srv.Kill()
	waitLine(t, out, "engine unreachable; not ready", 10*time.Second)
	time.Sleep(3 * time.Second) // several readiness pings and a presence refresh fail meanwhile
	if n := metricValue(t, admin, `realtime_redis_errors_total{class="unavailable",op="ping"}`); n < 2 {
		t.Errorf("%v unavailable pings counted during the outage, want at least 2", n)
	}
	srv.Restart()
	end := waitLine(t, out, "engine reachable again; ready", 10*time.Second)
	if d, ok := end["duration_ms"].(float64); !ok || d < 3000 {
		t.Errorf("the end-of-outage line gives duration_ms %v, want at least the 3 s it lasted", end["duration_ms"])
	}
	time.Sleep(1500 * time.Millisecond) // a repeated line would show within a readiness period
	for _, msg := range []string{"engine unreachable; not ready", "engine reachable again; ready"} {
		if n := countLines(t, out, msg); n != 1 {
			t.Errorf("%d %q lines for one outage, want 1", n, msg)
		}
	}
	for _, msg := range []string{"presence refresh failed", "presence chat report failed"} {
		if n := countLines(t, out, msg); n > 1 {
			t.Errorf("%d %q lines during one outage, want at most 1 (the outage line covers it)", n, msg)
		}
	}
	// go-redis's own complaints (failed dials, many a second) are debug
	// lines of the process log, not raw lines on stderr.
	redisLines := 0
	for _, l := range logLines(t, out) {
		if l["component"] == "go-redis" {
			redisLines++
			if l["level"] != "debug" {
				t.Errorf("go-redis line not at debug: %v", l)
			}
		}
	}
	if redisLines == 0 {
		t.Error("no go-redis line in the log during the outage: where did its messages go?")
	}
	stopServe(t, sigs, done, out)
}

// TestNotReadyWhileRedisIsDownAtStart: a node whose Redis is down when it
// starts answers /readyz 503 from the first request (it said ready until its
// first health tick, a second later, and the README's steps went on against
// an unreachable Redis), and turns ready once Redis is up.
func TestNotReadyWhileRedisIsDownAtStart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	srv.Kill()
	sigs, out, _, _, done := startServe(t, env{"REALTIME_REDIS_URL": srv.URL(), "REALTIME_JWT_SECRET": "s"},
		"--log-format", "json", "--drain-period", "100ms", "--node-id", "n-down-at-start",
		"--redis-prefix", redistest.Prefix(t))
	admin, _ := waitLine(t, out, "node listening", 10*time.Second)["admin_addr"].(string)
	readyz := func() int {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d with Redis down since before the start, want 503", code)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for readyz() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready 10 s after Redis came up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopServe(t, sigs, done, out)
}

// TestServeAPIAddr: --api-addr puts the server API on its own listener;
// the dev snippet's curl commands point there.
func TestServeAPIAddr(t *testing.T) {
	sigs, out, errb, _, done := startServe(t, env{}, "--dev", "--log-format", "json", "--drain-period", "100ms",
		"--node-id", "n-api", "--api-addr", "127.0.0.1:0")
	l := waitLine(t, out, "node listening", 10*time.Second)
	admin, _ := l["admin_addr"].(string)
	api, _ := l["api_addr"].(string)
	if api == "" || api == admin {
		t.Fatalf("api_addr %q, admin_addr %q: want a listener of its own", api, admin)
	}
	waitOutput(t, errb, "/api/stats", done)
	if !strings.Contains(errb.String(), "http://"+api+"/api/stats") {
		t.Errorf("dev snippet does not point at the API listener %s:\n%s", api, errb)
	}
	for addr, want := range map[string]int{api: http.StatusOK, admin: http.StatusNotFound} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/stats", nil)
		req.Header.Set("Authorization", "Bearer "+devAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s/api/stats: %d, want %d", addr, resp.StatusCode, want)
		}
	}
	stopServe(t, sigs, done, out)
}

// TestOperationsDocumentsEveryMetric scrapes a real node: every realtime_*
// family it exposes is named in docs/OPERATIONS.md.
func TestOperationsDocumentsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	sigs, out, _, _, done := startServe(t, env{}, "--dev", "--log-format", "json", "--drain-period", "100ms", "--node-id", "n-doc")
	admin, _ := waitLine(t, out, "node listening", 10*time.Second)["admin_addr"].(string)
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	families := regexp.MustCompile(`(?m)^# TYPE (realtime_\w+) `).FindAllStringSubmatch(string(body), -1)
	if len(families) < 20 {
		t.Fatalf("only %d realtime_ families on /metrics", len(families))
	}
	for _, f := range families {
		if !strings.Contains(string(doc), "`"+f[1]) {
			t.Errorf("docs/OPERATIONS.md does not describe %s", f[1])
		}
	}
	stopServe(t, sigs, done, out)
}
