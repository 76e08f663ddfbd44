package bench

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestParseIPRange(t *testing.T) {
	ips, err := ParseIPRange("127.0.0.2-127.0.0.40")
	if err != nil || len(ips) != 39 || ips[0] != "127.0.0.2" || ips[38] != "127.0.0.40" {
		t.Fatalf("%v %v", len(ips), err)
	}
	ips, err = ParseIPRange("10.0.0.1, 10.0.0.255-10.0.1.1")
	if err != nil || strings.Join(ips, " ") != "10.0.0.1 10.0.0.255 10.0.1.0 10.0.1.1" {
		t.Fatalf("%v %v", ips, err)
	}
	for _, bad := range []string{"127.0.0.5-127.0.0.1", "1.2.3", "127.0.0.1-::1"} {
		if _, err := ParseIPRange(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestConfigDefaultsAndLayout(t *testing.T) {
	c := Config{Targets: []string{"127.0.0.1:1"}, JWTSecret: "s", Conns: 2000}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.Scenario != ScenarioFanout || c.ChatSize != 2000 || c.groups() != 1 || c.Namespace != "/messenger" || c.Procs != 1 {
		t.Fatalf("%+v", c)
	}
	c = Config{Scenario: ScenarioChat, Targets: []string{"127.0.0.1:1"}, JWTSecret: "s", Conns: 25, RunID: "r1"}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	if c.groups() != 3 || c.groupSize(2) != 5 {
		t.Fatalf("groups %d last size %d", c.groups(), c.groupSize(2))
	}
	if g, m := c.groupOf(23); g != 2 || m != 3 {
		t.Fatalf("groupOf(23) = %d, %d", g, m)
	}
	if c.userID(7) != "br1-7" || c.chatID(2) != "br1-c2" {
		t.Fatal(c.userID(7), c.chatID(2))
	}
	r := Config{Scenario: ScenarioRTM, Targets: []string{"127.0.0.1:1"}, JWTSecret: "s", Conns: 25, Profiles: 4, RTMControlURL: "http://x", APIURL: "http://y"}
	if err := r.Normalize(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for g := range r.groups() {
		total += r.groupSize(g)
	}
	if total != 25 || r.groupSize(0) != 7 || r.groupSize(3) != 6 {
		t.Fatalf("rtm groups: total %d sizes %d %d", total, r.groupSize(0), r.groupSize(3))
	}
	for name, bad := range map[string]Config{
		"no target":    {JWTSecret: "s"},
		"no secret":    {Targets: []string{"a:1"}},
		"bad scenario": {Scenario: "x", Targets: []string{"a:1"}, JWTSecret: "s"},
		"bad io":       {IO: "poll", Targets: []string{"a:1"}, JWTSecret: "s"},
		"typing of 1":  {Scenario: ScenarioTyping, ChatSize: 1, Targets: []string{"a:1"}, JWTSecret: "s"},
		"rtm no url":   {Scenario: ScenarioRTM, Targets: []string{"a:1"}, JWTSecret: "s"},
		"procs":        {Procs: 5, Conns: 2, Targets: []string{"a:1"}, JWTSecret: "s"},
		"namespace":    {Namespace: "messenger", Targets: []string{"a:1"}, JWTSecret: "s"},
	} {
		if err := bad.Normalize(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime ...
	stat := "4242 (node (peer) x) S 1 4242 4242 0 -1 4194304 2000 0 0 0 1234 566 0 0 20 0 11 0 100 0\n"
	cpu, err := parseProcStat([]byte(stat))
	if err != nil || cpu != 18.0 {
		t.Fatalf("cpu %v err %v, want 18s", cpu, err)
	}
	if _, err := parseProcStat([]byte("12 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.4576e+07
process_cpu_seconds_total 1.5
realtime_goroutines 31
realtime_connections 2000
realtime_events_out_total{event="new_message"} 99
`
	m, _, err := parseMetrics(bufio.NewScanner(strings.NewReader(text)))
	if err != nil {
		t.Fatal(err)
	}
	if m["process_resident_memory_bytes"] != 24576000 || m["process_cpu_seconds_total"] != 1.5 || m["realtime_goroutines"] != 31 || m["realtime_connections"] != 2000 {
		t.Fatalf("%v", m)
	}
	if _, ok := m[`realtime_events_out_total{event="new_message"}`]; ok {
		t.Fatal("labelled samples are not read")
	}
}

func TestTopErrors(t *testing.T) {
	got := topErrors(map[string]int64{"timeout": 3, "http_503": 12, "refused": 3})
	if got != "http_503 ×12, refused ×3, timeout ×3" {
		t.Fatal(got)
	}
}
