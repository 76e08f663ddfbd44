package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1 // the node failed while running, or a second signal
	exitUsage   = 2 // bad flags or configuration; nothing was started
)

// app is the command line: its outputs and environment are injected so tests
// can drive it.
type app struct {
	stdout   io.Writer
	stderr   io.Writer
	getenv   getenvFunc
	hostname func() (string, error)
	now      func() time.Time
	// exit ends the process at once (a second SIGTERM/SIGINT).
	exit func(int)
	// signals, when not nil, replaces the OS signal subscription (tests).
	signals <-chan os.Signal
	// executable is os.Executable: the dev banner tells `go run` apart from
	// an installed binary. Nil: the banner says "realtime".
	executable func() (string, error)
}

func newApp() *app {
	return &app{
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.LookupEnv,
		hostname: os.Hostname,
		now:      time.Now,
		exit:     os.Exit,

		executable: os.Executable,
	}
}

// selfCommand is how the developer runs this binary again, for commands the
// dev banner suggests: "go run ./cmd/realtime" when the binary is one `go
// run` built in its cache directory (.../go-build<n>/b001/exe/realtime),
// "realtime" otherwise.
func (a *app) selfCommand() string {
	if a.executable == nil {
		return "realtime"
	}
	exe, err := a.executable()
	if err != nil {
		return "realtime"
	}
	exe = filepath.ToSlash(exe)
	if strings.Contains(exe, "/go-build") && strings.Contains(exe, "/exe/") {
		return "go run ./cmd/realtime"
	}
	return "realtime"
}

// Run runs the command line args (without the program name) and returns the
// process exit code.
func (a *app) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.mainUsage(a.stderr)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return a.cmdServe(ctx, rest)
	case "token":
		return a.cmdToken(rest)
	case "version", "--version", "-version":
		a.cmdVersion()
		return exitOK
	case "help", "-h", "--help", "-help":
		return a.cmdHelp(rest)
	default:
		fmt.Fprintf(a.stderr, "realtime: unknown command %q\n\n", cmd)
		a.mainUsage(a.stderr)
		return exitUsage
	}
}

func (a *app) mainUsage(w io.Writer) {
	fmt.Fprint(w, `realtime: a real-time chat backend for socket.io-client v4 apps.

Usage:
  realtime serve [flags]     run a node (realtime serve --dev to try it)
  realtime token --user ID   print a JWT for a user
  realtime version           print the version
  realtime help [command]    show help for a command

Every flag can also be set with the environment variable REALTIME_<FLAG>
(upper case, dashes as underscores), e.g. REALTIME_REDIS_URL for --redis-url.
`)
}

func (a *app) cmdHelp(args []string) int {
	if len(args) == 0 {
		a.mainUsage(a.stdout)
		return exitOK
	}
	switch args[0] {
	case "serve":
		serveFlags(&serveOptions{}).usage(a.stdout)
	case "token":
		tokenFlags(&tokenOptions{}).usage(a.stdout)
	case "version":
		fmt.Fprintln(a.stdout, "Usage: realtime version\n\nPrints the version and the Go version it was built with.")
	default:
		fmt.Fprintf(a.stderr, "realtime: unknown command %q\n", args[0])
		return exitUsage
	}
	return exitOK
}

func (a *app) cmdVersion() {
	v := version
	if v == "dev" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += "+" + s.Value[:12]
				}
			}
		}
	}
	fmt.Fprintf(a.stdout, "realtime %s %s %s/%s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// parseFlags parses args into f; done is true when the command should stop
// with code (help was printed, or the flags were wrong).
func (a *app) parseFlags(f *flagSet, args []string) (code int, done bool) {
	err := f.parse(args, a.getenv)
	if errors.Is(err, errHelp) {
		f.usage(a.stdout)
		return exitOK, true
	}
	if err != nil {
		return a.usageError(f.cmd, err.Error()), true
	}
	return 0, false
}

// usageError prints one line naming the problem and returns exitUsage.
func (a *app) usageError(cmd, msg string) int {
	fmt.Fprintf(a.stderr, "realtime %s: %s\n", cmd, msg)
	return exitUsage
}
