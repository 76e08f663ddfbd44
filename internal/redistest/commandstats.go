package redistest

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// CommandStat is one command's line of INFO commandstats.
type CommandStat struct {
	Calls int64 // times the server ran it
	Usec  int64 // microseconds of server CPU it took in all
}

// CommandStats reads the server's INFO commandstats by command name
// ("hmget", "client|setname"), counted since the server started or the last
// [ResetStats]. It sees what the server ran, whoever sent it.
func CommandStats(tb testing.TB, c redis.UniversalClient) map[string]CommandStat {
	tb.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatalf("redistest: INFO commandstats: %v", err)
	}
	stats := make(map[string]CommandStat)
	for line := range strings.Lines(info) {
		// cmdstat_hmget:calls=1,usec=5,usec_per_call=5.00,...
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var st CommandStat
		for field := range strings.SplitSeq(fields, ",") {
			key, v, _ := strings.Cut(field, "=")
			var dst *int64
			switch key {
			case "calls":
				dst = &st.Calls
			case "usec":
				dst = &st.Usec
			default:
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatalf("redistest: INFO commandstats line %q: %v", line, err)
			}
			*dst = n
		}
		stats[name] = st
	}
	return stats
}

// CommandCalls is [CommandStats] reduced to the calls per command.
func CommandCalls(tb testing.TB, c redis.UniversalClient) map[string]int64 {
	tb.Helper()
	calls := make(map[string]int64)
	for name, st := range CommandStats(tb, c) {
		calls[name] = st.Calls
	}
	return calls
}

// ResetStats zeroes the server's statistics (CONFIG RESETSTAT), so that
// [CommandStats] counts from now on.
func ResetStats(tb testing.TB, c redis.UniversalClient) {
	tb.Helper()
	if err := c.ConfigResetStat(context.Background()).Err(); err != nil {
		tb.Fatalf("redistest: CONFIG RESETSTAT: %v", err)
	}
}

// WireBytes counts the bytes a client's connections read from Redis: what
// the server's replies weigh on the wire.
type WireBytes struct{ read atomic.Int64 }

// Read is the number of bytes read so far.
func (w *WireBytes) Read() int64 { return w.read.Load() }

// CountingClient returns a client of s whose connections count the bytes
// they read on w; it is closed with the test.
func (s *Server) CountingClient() (*redis.Client, *WireBytes) {
	w := &WireBytes{}
	var d net.Dialer
	c := redis.NewClient(&redis.Options{
		Addr: s.Addr(),
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{Conn: nc, read: &w.read}, nil
		},
	})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c, w
}

// countingConn adds what it reads to read.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
