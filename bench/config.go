package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Scenarios.
const (
	ScenarioIdle      = "idle"
	ScenarioFanout    = "fanout"
	ScenarioChat      = "chat"
	ScenarioTyping    = "typing"
	ScenarioReconnect = "reconnect"
	ScenarioRTM       = "rtm"
)

// Scenarios lists every scenario name.
var Scenarios = []string{ScenarioIdle, ScenarioFanout, ScenarioChat, ScenarioTyping, ScenarioReconnect, ScenarioRTM}

// Reader kinds.
const (
	IOEpoll     = "epoll"     // one epoll loop per CPU, nothing per idle connection
	IOGoroutine = "goroutine" // one goroutine and read buffer per connection
)

var (
	// ErrConfig: a bad or contradictory setting; the message names it.
	ErrConfig = errors.New("bench: bad configuration")
	// ErrLoss: the run lost messages (received fewer than expected after the drain).
	ErrLoss = errors.New("bench: messages lost")
	// ErrFailed: the run could not do what it set out to (connections refused,
	// reconnects not back in time, a worker died).
	ErrFailed = errors.New("bench: run failed")
)

// Config describes one run. Its zero value is not runnable (Targets and
// JWTSecret are needed); Normalize fills every other default, stated per
// field.
type Config struct {
	Scenario string   `json:"scenario"` // default fanout
	Targets  []string `json:"targets"`  // host:port of each node; connection i goes to Targets[i % len]
	// LocalIPs are source addresses to bind, spread round-robin; empty lets
	// the kernel choose (one source address gives about 28,000 ports per
	// target).
	LocalIPs  []string `json:"localIPs,omitempty"`
	Path      string   `json:"path"`      // default /socket.io/
	Namespace string   `json:"namespace"` // default /messenger
	JWTSecret string   `json:"-"`         // HS256 secret the servers accept (required)
	TokenTTL  Duration `json:"tokenTTL"`  // default 1h

	Conns    int      `json:"conns"`    // connections (one user each); default 1000
	ChatSize int      `json:"chatSize"` // members per chat; default: all (one chat) for fanout, 10 otherwise
	Rate     float64  `json:"rate"`     // fanout: messages/s from the one sender; chat: messages/s in total; typing: events/s in total; rtm: injected events/s. Default 10
	Duration Duration `json:"duration"` // how long the load (or the idle hold) lasts; default 10s
	Drain    Duration `json:"drain"`    // longest wait after the last send for deliveries; default 10s
	// MessageSize pads message content to this many bytes (at least the
	// marker's length); default 64.
	MessageSize int `json:"messageSize"`

	ConnectTimeout     Duration `json:"connectTimeout"`     // per connection: dial, upgrade, CONNECT, join; default 10s
	ConnectConcurrency int      `json:"connectConcurrency"` // connections being opened at once per worker; default 64
	ConnectRate        float64  `json:"connectRate"`        // new connections per second in total, 0 for no limit

	ReconnectFraction float64  `json:"reconnectFraction"` // reconnect: share of the connections dropped at once; default 1
	ReconnectTimeout  Duration `json:"reconnectTimeout"`  // reconnect: longest wait for all to be back; default 60s

	IO string `json:"io"` // epoll (default) or goroutine
	// ReadDelay makes each epoll loop pause this long after handling a batch
	// of readiness events, so later reads find several frames (less
	// generator CPU per message) at the price of up to ReadDelay added to
	// the measured latencies. Default 0.
	ReadDelay Duration `json:"readDelay,omitempty"`
	Procs     int      `json:"procs"` // worker processes; default 1 (in-process)
	// Strict decodes every received event fully with encoding/json and checks
	// its fields, instead of the byte search. Costs CPU; for debugging.
	Strict bool `json:"strict"`

	ServerPIDs  []int    `json:"serverPIDs,omitempty"`  // server processes to read /proc/<pid> of
	MetricsURLs []string `json:"metricsURLs,omitempty"` // Prometheus /metrics of the servers (used when no PID is given, and for goroutines)

	// RTM scenario: cmd/rtmsim's base URL (POST /control/emit), the nodes'
	// admin base URL and API key (PUT /api/rtm/profiles/{id}), and how many
	// profiles the users are spread over (default 10).
	RTMControlURL string `json:"rtmControlURL,omitempty"`
	APIURL        string `json:"apiURL,omitempty"`
	APIKey        string `json:"-"`
	Profiles      int    `json:"profiles,omitempty"`

	// RunID prefixes user and chat ids so runs never share a chat's history;
	// default: a random 6-hex-digit id.
	RunID string `json:"runID"`
	// Deadline bounds the whole run; default: an estimate from the settings
	// plus 60s. The run stops and fails when it is reached.
	Deadline Duration `json:"deadline"`
}

// Duration is a time.Duration that reads and writes as "1.5s" in JSON.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// Normalize fills defaults and checks the settings.
func (c *Config) Normalize() error {
	if c.Scenario == "" {
		c.Scenario = ScenarioFanout
	}
	known := false
	for _, s := range Scenarios {
		known = known || s == c.Scenario
	}
	if !known {
		return configErr("unknown scenario %q (one of %s)", c.Scenario, strings.Join(Scenarios, ", "))
	}
	if len(c.Targets) == 0 {
		return configErr("no target (--targets host:port,...)")
	}
	for _, t := range c.Targets {
		if _, err := netip.ParseAddrPort(t); err != nil {
			if _, _, ok := strings.Cut(t, ":"); !ok {
				return configErr("target %q is not host:port", t)
			}
		}
	}
	for _, ip := range c.LocalIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return configErr("local IP %q: %v", ip, err)
		}
	}
	if c.JWTSecret == "" {
		return configErr("no JWT secret (--jwt-secret, or BENCH_JWT_SECRET)")
	}
	if c.Path == "" {
		c.Path = "/socket.io/"
	}
	if c.Namespace == "" {
		c.Namespace = "/messenger"
	}
	if !strings.HasPrefix(c.Namespace, "/") || strings.Contains(c.Namespace, ",") {
		return configErr("namespace %q must start with / and hold no comma", c.Namespace)
	}
	setDur(&c.TokenTTL, time.Hour)
	if c.Conns == 0 {
		c.Conns = 1000
	}
	if c.Conns < 1 {
		return configErr("conns must be positive")
	}
	if c.ChatSize == 0 {
		c.ChatSize = 10
		if c.Scenario == ScenarioFanout {
			c.ChatSize = c.Conns
		}
	}
	if c.ChatSize < 1 {
		return configErr("chat size must be positive")
	}
	if c.ChatSize > c.Conns {
		c.ChatSize = c.Conns
	}
	if c.Scenario == ScenarioTyping && c.ChatSize < 2 {
		return configErr("typing needs chats of at least 2 (typing goes to the other members)")
	}
	if c.Rate == 0 {
		c.Rate = 10
	}
	if c.Rate < 0 {
		return configErr("rate must be positive")
	}
	setDur(&c.Duration, 10*time.Second)
	setDur(&c.Drain, 10*time.Second)
	if c.MessageSize == 0 {
		c.MessageSize = 64
	}
	if c.MessageSize > 3900 {
		return configErr("message size %d is above what the servers accept (4000 characters)", c.MessageSize)
	}
	setDur(&c.ConnectTimeout, 10*time.Second)
	if c.ConnectConcurrency == 0 {
		c.ConnectConcurrency = 64
	}
	if c.ConnectConcurrency < 1 || c.ConnectRate < 0 {
		return configErr("connect concurrency and rate must be positive")
	}
	if c.ReconnectFraction == 0 {
		c.ReconnectFraction = 1
	}
	if c.ReconnectFraction < 0 || c.ReconnectFraction > 1 {
		return configErr("reconnect fraction must be in (0, 1]")
	}
	setDur(&c.ReconnectTimeout, 60*time.Second)
	if c.IO == "" {
		c.IO = IOEpoll
	}
	if c.IO != IOEpoll && c.IO != IOGoroutine {
		return configErr("io %q: epoll or goroutine", c.IO)
	}
	if c.Procs == 0 {
		c.Procs = 1
	}
	if c.Procs < 1 || c.Procs > c.Conns {
		return configErr("procs must be between 1 and conns")
	}
	if c.Scenario == ScenarioRTM {
		if c.RTMControlURL == "" || c.APIURL == "" {
			return configErr("rtm needs --rtm-control (cmd/rtmsim base URL) and --api-url (a node's admin URL)")
		}
		if c.Profiles == 0 {
			c.Profiles = 10
		}
		if c.Profiles < 1 || c.Profiles > c.Conns {
			return configErr("profiles must be between 1 and conns")
		}
	}
	if c.RunID == "" {
		c.RunID = randomHex(3)
	}
	for _, r := range c.RunID {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return configErr("run id %q: letters and digits only", c.RunID)
		}
	}
	if c.Deadline == 0 {
		est := c.Duration.D() + c.Drain.D() + 60*time.Second
		if c.ConnectRate > 0 {
			est += time.Duration(float64(c.Conns) / c.ConnectRate * float64(time.Second))
		} else {
			est += time.Duration(c.Conns/100) * time.Millisecond * 10 // 1000 connections/s at worst
		}
		if c.Scenario == ScenarioReconnect {
			est += c.ReconnectTimeout.D()
		}
		c.Deadline = Duration(est)
	}
	return nil
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// groups is the number of chats (or RTM profiles) the connections fill.
func (c *Config) groups() int {
	if c.Scenario == ScenarioRTM {
		return c.Profiles
	}
	return (c.Conns + c.ChatSize - 1) / c.ChatSize
}

// groupOf places connection i: chat i / ChatSize, member i % ChatSize (RTM:
// profile i % Profiles, member i / Profiles).
func (c *Config) groupOf(i int) (group, member int) {
	if c.Scenario == ScenarioRTM {
		return i % c.Profiles, i / c.Profiles
	}
	return i / c.ChatSize, i % c.ChatSize
}

// groupSize is the number of members of group g.
func (c *Config) groupSize(g int) int {
	if c.Scenario == ScenarioRTM {
		n := c.Conns / c.Profiles
		if g < c.Conns%c.Profiles {
			n++
		}
		return n
	}
	return min(c.ChatSize, c.Conns-g*c.ChatSize)
}

// userID and chatID name connection i's user and group g's chat.
func (c *Config) userID(i int) string    { return "b" + c.RunID + "-" + strconv.Itoa(i) }
func (c *Config) chatID(g int) string    { return "b" + c.RunID + "-c" + strconv.Itoa(g) }
func (c *Config) profileID(g int) string { return "b" + c.RunID + "-p" + strconv.Itoa(g) }

// ParseIPRange reads "127.0.0.2-127.0.0.40", "10.0.0.1,10.0.0.2" or a mix
// into a list of addresses.
func ParseIPRange(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, configErr("local IPs %q: %v", part, err)
		}
		if !isRange {
			out = append(out, a.String())
			continue
		}
		b, err := netip.ParseAddr(strings.TrimSpace(hi))
		if err != nil {
			return nil, configErr("local IPs %q: %v", part, err)
		}
		if b.Less(a) || a.Is4() != b.Is4() {
			return nil, configErr("local IPs %q: empty or mixed range", part)
		}
		for ip := a; ; ip = ip.Next() {
			out = append(out, ip.String())
			if len(out) > 65536 {
				return nil, configErr("local IPs %q: more than 65536 addresses", part)
			}
			if ip == b {
				break
			}
		}
	}
	return out, nil
}
