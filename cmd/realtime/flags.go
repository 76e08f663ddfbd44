package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// envPrefix starts the environment variable of every flag: --max-frame reads
// REALTIME_MAX_FRAME when it is not given on the command line.
const envPrefix = "REALTIME_"

// envName is the environment variable that backs a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// getenvFunc looks up an environment variable (os.LookupEnv in production).
type getenvFunc func(string) (string, bool)

// option documents one flag beyond what package flag keeps.
type option struct {
	name    string
	kind    string // "string", "int", "bool", "duration": shown in help
	usage   string
	defText string // the default as shown in help and README ("" shows none)
}

// flagSet is a flag.FlagSet whose every flag also reads REALTIME_<FLAG> from
// the environment when it is not given on the command line. The command line
// wins over the environment, the environment over the default.
type flagSet struct {
	fs      *flag.FlagSet
	cmd     string // subcommand name, for help
	summary string // one line shown above the flags
	opts    []option
	given   map[string]string // flag name → "flag" or the env variable it came from
}

func newFlagSet(cmd, summary string) *flagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we print errors and help ourselves
	return &flagSet{fs: fs, cmd: cmd, summary: summary, given: map[string]string{}}
}

func (f *flagSet) add(name, kind, usage, defText string) {
	f.opts = append(f.opts, option{name: name, kind: kind, usage: usage, defText: defText})
}

// String defines a string flag; the help shows def quoted unless defText overrides it.
func (f *flagSet) String(p *string, name, def, usage string) {
	f.fs.StringVar(p, name, def, usage)
	f.add(name, "string", usage, def)
}

// StringShown is String with a default described rather than given (e.g. a
// value computed at start-up).
func (f *flagSet) StringShown(p *string, name, shown, usage string) {
	f.fs.StringVar(p, name, "", usage)
	f.add(name, "string", usage, shown)
}

func (f *flagSet) Int(p *int, name string, def int, usage string) {
	f.fs.IntVar(p, name, def, usage)
	f.add(name, "int", usage, fmt.Sprint(def))
}

func (f *flagSet) Bool(p *bool, name string, def bool, usage string) {
	f.fs.BoolVar(p, name, def, usage)
	f.add(name, "bool", usage, fmt.Sprint(def))
}

func (f *flagSet) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.fs.DurationVar(p, name, def, usage)
	f.add(name, "duration", usage, fmtDuration(def))
}

// errHelp is returned by parse when -h/--help was asked for.
var errHelp = flag.ErrHelp

// parse reads the command line, then fills every flag not given there from
// its environment variable (an empty variable counts as unset). Errors name
// the flag or the variable at fault.
func (f *flagSet) parse(args []string, getenv getenvFunc) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --; see realtime %s --help)", f.fs.Arg(0), f.cmd)
	}
	f.fs.Visit(func(fl *flag.Flag) { f.given[fl.Name] = "flag" })
	for _, o := range f.opts {
		if _, ok := f.given[o.name]; ok {
			continue
		}
		env := envName(o.name)
		v, ok := getenv(env)
		if !ok || v == "" {
			continue
		}
		if err := f.fs.Set(o.name, v); err != nil {
			return fmt.Errorf("environment variable %s: invalid value %q for --%s: %v", env, v, o.name, unwrapFlagErr(err))
		}
		f.given[o.name] = env
	}
	return nil
}

// unwrapFlagErr trims strconv's noise ("strconv.ParseInt: parsing ...").
func unwrapFlagErr(err error) error {
	var ne interface{ Unwrap() error }
	if errors.As(err, &ne) && ne.Unwrap() != nil {
		return ne.Unwrap()
	}
	return err
}

// isGiven reports whether the flag was set on the command line or through its
// environment variable.
func (f *flagSet) isGiven(name string) bool {
	_, ok := f.given[name]
	return ok
}

// source names where a flag's value came from, for error messages:
// "--jwt-alg" or "REALTIME_JWT_ALG".
func (f *flagSet) source(name string) string {
	if s := f.given[name]; s != "" && s != "flag" {
		return s
	}
	return "--" + name
}

// usage writes the help: every flag with its type, default and environment
// variable, in the layout of package flag.
func (f *flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: realtime %s [flags]\n\n%s\n\nEvery flag is also read from the environment variable shown when it is not\ngiven on the command line.\n\nFlags:\n", f.cmd, f.summary)
	for _, o := range f.opts {
		arg := " " + o.kind
		if o.kind == "bool" {
			arg = ""
		}
		fmt.Fprintf(w, "  --%s%s\n    \t%s (", o.name, arg, o.usage)
		if o.defText != "" && o.defText != "false" {
			fmt.Fprintf(w, "default %s, ", o.defText)
		}
		fmt.Fprintf(w, "env %s)\n", envName(o.name))
	}
}

// fmtDuration prints a duration without zero trailing units: 1m, 24h, 300ms.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// markdownTable renders the flags as the README's table.
func (f *flagSet) markdownTable() string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	for _, o := range f.opts {
		def := ""
		if o.defText != "" {
			def = "`" + o.defText + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s |\n", o.name, envName(o.name), def, strings.ReplaceAll(o.usage, "|", "\\|"))
	}
	return b.String()
}
