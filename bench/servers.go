package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// serverProbe reads one server's figures: from /proc/<pid> when a PID is
// known (RSS from status VmRSS, CPU from stat utime+stime), from its
// Prometheus /metrics otherwise (process_resident_memory_bytes,
// process_cpu_seconds_total), and goroutines and connections from /metrics
// when a URL is known (realtime_goroutines, realtime_connections).
type serverProbe struct {
	name string
	pid  int
	url  string
}

// serverSample is one reading; -1 marks a figure the server does not offer.
type serverSample struct {
	At          time.Time
	RSS         int64   // bytes
	CPU         float64 // seconds of user+system time since the process started
	Goroutines  int64
	Connections int64
	Version     string // what its /metrics says it runs ("" if nothing)
	Err         string
}

func probes(cfg *Config) []serverProbe {
	n := max(len(cfg.ServerPIDs), len(cfg.MetricsURLs))
	out := make([]serverProbe, 0, n)
	for i := range n {
		var p serverProbe
		if i < len(cfg.ServerPIDs) {
			p.pid = cfg.ServerPIDs[i]
			p.name = "pid " + strconv.Itoa(p.pid)
		}
		if i < len(cfg.MetricsURLs) {
			p.url = cfg.MetricsURLs[i]
			if p.name == "" {
				p.name = p.url
			}
		}
		out = append(out, p)
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTicks = 100

func (p serverProbe) sample(ctx context.Context, client *http.Client) serverSample {
	s := serverSample{At: time.Now(), RSS: -1, CPU: -1, Goroutines: -1, Connections: -1}
	var errs []string
	if p.pid > 0 {
		rss, cpu, err := readProc(p.pid)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			s.RSS, s.CPU = rss, cpu
		}
	}
	if p.url != "" {
		m, version, err := scrapeMetrics(ctx, client, p.url)
		if err != nil {
			errs = append(errs, err.Error())
		} else {
			s.Version = version
			if v, ok := m["process_resident_memory_bytes"]; ok && s.RSS < 0 {
				s.RSS = int64(v)
			}
			if v, ok := m["process_cpu_seconds_total"]; ok && s.CPU < 0 {
				s.CPU = v
			}
			if v, ok := m["realtime_goroutines"]; ok {
				s.Goroutines = int64(v)
			} else if v, ok := m["go_goroutines"]; ok {
				s.Goroutines = int64(v)
			}
			if v, ok := m["realtime_connections"]; ok {
				s.Connections = int64(v)
			}
		}
	}
	s.Err = strings.Join(errs, "; ")
	return s
}

// readProc reads VmRSS from /proc/<pid>/status and utime+stime from
// /proc/<pid>/stat.
func readProc(pid int) (rss int64, cpu float64, err error) {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("server pid %d: %w", pid, err)
	}
	rss = -1
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				rss = kb * 1024
			}
		}
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("server pid %d: %w", pid, err)
	}
	cpu, err = parseProcStat(stat)
	return rss, cpu, err
}

// parseProcStat returns utime+stime in seconds (fields 14 and 15 of proc(5),
// counted after the command name, which may hold spaces and parentheses).
func parseProcStat(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: malformed /proc stat")
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc stat")
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: malformed /proc stat times")
	}
	return float64(ut+st) / clockTicks, nil
}

// scrapeMetrics reads unlabelled samples of a Prometheus text exposition,
// and the server's version (see parseMetrics).
func scrapeMetrics(ctx context.Context, client *http.Client, url string) (map[string]float64, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("metrics %s: HTTP %d", url, resp.StatusCode)
	}
	m, info, err := parseMetrics(bufio.NewScanner(resp.Body))
	return m, serverVersion(info), err
}

// versionInfo are the version labels of the info metrics a server may
// export, by metric name.
type versionInfo map[string]map[string]string

// serverVersion names what a server runs from its info metrics:
// "realtime v1.2.3 (go1.25.1)", "node v20.11.0" or "go1.25.1"; "" if none.
func serverVersion(info versionInfo) string {
	if b, ok := info["realtime_build_info"]; ok {
		v := "realtime " + cmp.Or(b["version"], "?")
		if g := cmp.Or(b["go"], b["goversion"], info["go_info"]["version"]); g != "" {
			v += " (" + g + ")"
		}
		return v
	}
	if n, ok := info["nodejs_version_info"]; ok {
		return "node " + n["version"]
	}
	return info["go_info"]["version"]
}

var infoMetrics = []string{"realtime_build_info", "nodejs_version_info", "go_info"}

func parseMetrics(sc *bufio.Scanner) (map[string]float64, versionInfo, error) {
	out := map[string]float64{}
	info := versionInfo{}
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if name, labels, ok := strings.Cut(line, "{"); ok {
			if slices.Contains(infoMetrics, name) {
				info[name] = parseLabels(labels)
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err == nil {
			out[f[0]] = v
		}
	}
	return out, info, sc.Err()
}

// parseLabels reads `a="x",b="y"} 1` into a map (escapes are kept as is).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for {
		name, rest, ok := strings.Cut(s, `="`)
		if !ok {
			return out
		}
		end := 0
		for end < len(rest) && (rest[end] != '"' || end > 0 && rest[end-1] == '\\') {
			end++
		}
		out[strings.TrimLeft(name, ", ")] = rest[:min(end, len(rest))]
		if end >= len(rest) {
			return out
		}
		s = rest[end+1:]
	}
}

// sampleAll reads every probe at once.
func sampleAll(ctx context.Context, ps []serverProbe, client *http.Client) []serverSample {
	out := make([]serverSample, len(ps))
	for i, p := range ps {
		out[i] = p.sample(ctx, client)
	}
	return out
}
