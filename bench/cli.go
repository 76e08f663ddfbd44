package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anchat/realtime/internal/flaglist"
)

// Exit codes of the command.
const (
	ExitOK     = 0 // the run passed
	ExitFailed = 1 // the run failed: loss, duplicates, refused or dropped connections
	ExitUsage  = 2 // bad flags
	ExitError  = 3 // the run could not start
)

// Main is the bench command: it parses args (without the program name),
// runs, prints, and returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--worker" {
		if err := RunWorker(ctx, stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "bench worker:", err)
			return ExitError
		}
		return ExitOK
	}
	if len(args) > 0 && args[0] == "compare" {
		return compareMain(args[1:], stdout, stderr)
	}
	var cfg Config
	var targets, localIPs, pids, metrics, jsonOut, report string
	var quiet bool
	var cpuProfile string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Scenario, "scenario", ScenarioFanout, "scenario: "+strings.Join(Scenarios, ", "))
	fs.StringVar(&targets, "targets", "127.0.0.1:8080", "comma-separated host:port of the nodes; connection i goes to target i mod n")
	fs.StringVar(&localIPs, "local-ips", "", "source addresses to spread connections over, e.g. 127.0.0.2-127.0.0.40 (more ports than one address has)")
	fs.StringVar(&cfg.Path, "path", "/socket.io/", "Engine.IO path")
	fs.StringVar(&cfg.Namespace, "namespace", "/messenger", "Socket.IO namespace")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", os.Getenv("BENCH_JWT_SECRET"), "HS256 secret the servers accept (env BENCH_JWT_SECRET; the node's --dev default is dev-secret)")
	durFlag(fs, &cfg.TokenTTL, "token-ttl", time.Hour, "validity of the minted tokens")
	fs.IntVar(&cfg.Conns, "conns", 1000, "connections, one user each")
	fs.IntVar(&cfg.ChatSize, "chat-size", 0, "members per chat (default: all in one chat for fanout, 10 otherwise)")
	fs.Float64Var(&cfg.Rate, "rate", 10, "fanout: messages/s of the one sender (deliveries/s = rate × members); chat: messages/s in total; typing: events/s in total; rtm: injected events/s")
	durFlag(fs, &cfg.Duration, "duration", 10*time.Second, "load duration (idle: how long connections are held)")
	durFlag(fs, &cfg.Drain, "drain", 10*time.Second, "longest wait for deliveries after the last send; what has not arrived by then is lost")
	fs.IntVar(&cfg.MessageSize, "message-size", 64, "message content bytes (the marker plus padding)")
	durFlag(fs, &cfg.ConnectTimeout, "connect-timeout", 10*time.Second, "per connection: dial, upgrade, CONNECT and join")
	fs.IntVar(&cfg.ConnectConcurrency, "connect-concurrency", 64, "connections being opened at once, per worker")
	fs.Float64Var(&cfg.ConnectRate, "connect-rate", 0, "new connections per second in total (0: as fast as the concurrency allows)")
	fs.Float64Var(&cfg.ReconnectFraction, "reconnect-fraction", 1, "reconnect: share of the connections dropped at once")
	durFlag(fs, &cfg.ReconnectTimeout, "reconnect-timeout", 60*time.Second, "reconnect: longest wait until all are back")
	fs.StringVar(&cfg.IO, "io", IOEpoll, "reader: epoll (one loop per CPU, nothing per idle connection) or goroutine (one per connection)")
	durFlag(fs, &cfg.ReadDelay, "read-delay", 0, "epoll: pause after each batch of reads so later reads find more frames (less generator CPU, up to this much added latency)")
	fs.IntVar(&cfg.Procs, "procs", 1, "worker processes to split the connections over (one process may hold 20,000 files here)")
	fs.BoolVar(&cfg.Strict, "strict", false, "decode every received message fully and check its fields (slower)")
	fs.StringVar(&pids, "server-pids", "", "comma-separated server PIDs: RSS and CPU from /proc/<pid>")
	fs.StringVar(&metrics, "metrics-urls", "", "comma-separated server /metrics URLs: RSS and CPU when no PID is given, goroutines and connections")
	fs.StringVar(&cfg.RTMControlURL, "rtm-control", "", "rtm: cmd/rtmsim base URL (POST /control/emit)")
	fs.StringVar(&cfg.APIURL, "api-url", "", "rtm: a node's admin base URL, to store the profiles' sessions")
	fs.StringVar(&cfg.APIKey, "api-key", os.Getenv("BENCH_API_KEY"), "rtm: the node's server API key (env BENCH_API_KEY)")
	fs.IntVar(&cfg.Profiles, "profiles", 10, "rtm: profiles the users are spread over")
	fs.StringVar(&cfg.RunID, "run-id", "", "prefix of user and chat ids (default random)")
	durFlag(fs, &cfg.Deadline, "deadline", 0, "bound on the whole run (default: estimated from the settings plus 60s)")
	fs.StringVar(&jsonOut, "json", "", "write the result as JSON to this file (- for stdout, instead of the table)")
	fs.StringVar(&report, "report", "", "write a self-contained HTML report to this file")
	fs.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	fs.StringVar(&cpuProfile, "cpu-profile", "", "write the generator's CPU profile (pprof) to this file (with --procs 1)")
	fs.Usage = func() {} // printed below: --help to stdout, once
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return ExitOK
		}
		fmt.Fprintf(stderr, "bench: %v\n(see bench --help)\n", err)
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q (flags start with --)\n", fs.Arg(0))
		return ExitUsage
	}
	cfg.Targets = flaglist.Split(targets)
	cfg.MetricsURLs = flaglist.Split(metrics)
	if localIPs != "" {
		ips, err := ParseIPRange(localIPs)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return ExitUsage
		}
		cfg.LocalIPs = ips
	}
	for _, p := range flaglist.Split(pids) {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "bench: --server-pids: %q is not a PID\n", p)
			return ExitUsage
		}
		cfg.ServerPIDs = append(cfg.ServerPIDs, n)
	}
	if err := cfg.Normalize(); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	opts := Options{}
	if !quiet {
		opts.Progress = stderr
		opts.TTY = isTerminal(stderr)
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return ExitUsage
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return ExitUsage
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	res, err := Run(ctx, cfg, opts)
	if res == nil {
		fmt.Fprintln(stderr, "bench:", err)
		return ExitError
	}
	res.Command = commandLine(args)
	res.Flags = map[string]string{}
	fs.Visit(func(f *flag.Flag) { res.Flags[f.Name] = f.Value.String() })
	if _, ok := res.Flags["jwt-secret"]; ok {
		res.Flags["jwt-secret"] = "(set)"
	}
	if _, ok := res.Flags["api-key"]; ok {
		res.Flags["api-key"] = "(set)"
	}
	switch jsonOut {
	case "":
		_ = WriteTable(stdout, res)
	case "-":
		_ = WriteJSON(stdout, res)
	default:
		_ = WriteTable(stdout, res)
		if werr := writeFile(jsonOut, func(w io.Writer) error { return WriteJSON(w, res) }); werr != nil {
			fmt.Fprintln(stderr, "bench:", werr)
			return ExitError
		}
	}
	if report != "" {
		if werr := writeFile(report, func(w io.Writer) error { return WriteHTML(w, res) }); werr != nil {
			fmt.Fprintln(stderr, "bench:", werr)
			return ExitError
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench: FAILED:", err)
		return ExitFailed
	}
	return ExitOK
}

// commandLine is the bench command as run, shell-quoted where needed, with
// the values of --jwt-secret and --api-key hidden.
func commandLine(args []string) string {
	out := []string{"bench"}
	hide := false
	for _, a := range args {
		switch {
		case hide:
			a, hide = "…", false
		case a == "--jwt-secret" || a == "-jwt-secret" || a == "--api-key" || a == "-api-key":
			hide = true
		case strings.HasPrefix(a, "--jwt-secret=") || strings.HasPrefix(a, "--api-key="):
			a = a[:strings.IndexByte(a, '=')+1] + "…"
		}
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\|&;<>()*?[]{}") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// durFlag defines a Duration flag.
func durFlag(fs *flag.FlagSet, p *Duration, name string, def time.Duration, usage string) {
	*p = Duration(def)
	fs.Func(name, usage+fmt.Sprintf(" (default %s)", def), func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*p = Duration(d)
		return nil
	})
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: bench [flags]
       bench compare [flags] (markdown tables from --json results; bench compare --help)

Load generator for realtime nodes and other Socket.IO v4 servers with the same
events (EIO4/SIO5 over WebSocket). Prints a summary table (or --json), a live
progress line on a terminal, and optionally an HTML report. Exits 1 when the
run failed: messages lost or duplicated, connections refused or dropped.

Our node caps every user at 30 messages a minute and each address at 60
connection attempts a minute by default; for load, start it with high limits:

  realtime serve --dev --addr :8080 --admin-addr 127.0.0.1:9090 \
    --limit-messages 100000000 --limit-typing 100000000 --limit-connects 100000000 \
    --max-user-connections 100000 --max-connections 20000

Examples:

  bench --scenario idle   --conns 10000 --duration 20s --local-ips 127.0.0.2-127.0.0.40 --server-pids $PID
  bench --scenario fanout --conns 2000 --rate 200 --targets 127.0.0.1:8080,127.0.0.1:8081
  bench --scenario chat   --conns 2000 --chat-size 10 --rate 1000 --report chat.html

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
