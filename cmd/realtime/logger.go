package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// logTimeFormat is RFC 3339 with milliseconds (DESIGN.md "Observability").
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

func init() {
	// Set once at start-up, before any logger exists.
	zerolog.TimeFieldFormat = logTimeFormat
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
	// Durations in milliseconds (zerolog's default, stated): every Dur
	// field's name ends in _ms (logfields_test.go).
	zerolog.DurationFieldUnit = time.Millisecond
}

// colorful reports whether w is a terminal and NO_COLOR is unset.
func colorful(w io.Writer) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// parseLevel accepts zerolog's level names.
func parseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(s) {
	case "trace", "debug", "info", "warn", "error":
		return zerolog.ParseLevel(strings.ToLower(s))
	case "warning":
		return zerolog.WarnLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("unknown log level %q (want trace, debug, info, warn or error)", s)
}

// newLogger builds the process logger: JSON (or console) lines on w, each
// with time, level, message and node. It is not sampled: the node samples its
// own hot-path warnings and never errors.
func newLogger(w io.Writer, format, level, nodeID string) (zerolog.Logger, error) {
	lvl, err := parseLevel(level)
	if err != nil {
		return zerolog.Nop(), err
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !colorful(w)}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("node", nodeID).Logger(), nil
}

// redisLogger routes go-redis's own messages (a failed dial, several a
// second per connection pool while Redis is down) to the process log at
// debug level: the node's outage lines ("engine unreachable; not ready",
// "engine reachable again; ready") already tell the story at info.
type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug().Str("component", "go-redis").Msg(fmt.Sprintf(format, v...))
}
