package main

import (
	"slices"
	"strings"
	"testing"
)

// TestPeerAPIHostsFlag: --peer-api-hosts (or REALTIME_PEER_API_HOSTS)
// reaches the node's configuration as a list, "private" by default, and a
// bad entry is refused naming the flag.
func TestPeerAPIHostsFlag(t *testing.T) {
	_, r, err := resolveArgs(t, env{"REALTIME_JWT_SECRET": "s"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.cfg.PeerAPIHosts, []string{"private"}) {
		t.Errorf("default peer API hosts %q, want [private]", r.cfg.PeerAPIHosts)
	}
	_, r, err = resolveArgs(t, env{"REALTIME_JWT_SECRET": "s"}, "--peer-api-hosts", "10.0.0.0/16, *.rt.svc.cluster.local,fd00::1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.0/16", "*.rt.svc.cluster.local", "fd00::1"}; !slices.Equal(r.cfg.PeerAPIHosts, want) {
		t.Errorf("peer API hosts %q, want %q", r.cfg.PeerAPIHosts, want)
	}
	for _, tc := range []struct {
		env  env
		args []string
		want string
	}{
		{env{"REALTIME_PEER_API_HOSTS": "10.0.0.0/33"}, nil, "REALTIME_PEER_API_HOSTS"},
		{nil, []string{"--peer-api-hosts", "http://10.0.0.1:9090"}, "--peer-api-hosts"},
	} {
		e := env{"REALTIME_JWT_SECRET": "s"}
		for k, v := range tc.env {
			e[k] = v
		}
		if _, _, err := resolveArgs(t, e, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want one naming %s", tc.env, tc.args, err, tc.want)
		}
	}
}

// TestConsoleSocketOriginsFlag: --console-socket-origins reaches the node's
// configuration; a value that is no ws:// or wss:// origin is refused
// naming the flag.
func TestConsoleSocketOriginsFlag(t *testing.T) {
	_, r, err := resolveArgs(t, env{"REALTIME_JWT_SECRET": "s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.cfg.ConsoleSocketOrigins) != 0 {
		t.Errorf("default console socket origins %q, want none", r.cfg.ConsoleSocketOrigins)
	}
	_, r, err = resolveArgs(t, env{"REALTIME_JWT_SECRET": "s", "REALTIME_CONSOLE_SOCKET_ORIGINS": "wss://chat.example.com, ws://10.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"wss://chat.example.com", "ws://10.0.0.1:8080"}; !slices.Equal(r.cfg.ConsoleSocketOrigins, want) {
		t.Errorf("console socket origins %q, want %q", r.cfg.ConsoleSocketOrigins, want)
	}
	// An https origin is no socket; a CSP source cannot name an IPv6
	// address or a host with '_' (browsers would drop it).
	for _, bad := range []string{"https://chat.example.com", "wss://[::1]:8443", "wss://my_lb.example.com"} {
		if _, _, err := resolveArgs(t, env{"REALTIME_JWT_SECRET": "s"}, "--console-socket-origins", bad); err == nil ||
			!strings.Contains(err.Error(), "--console-socket-origins") {
			t.Errorf("%s: error %v, want one naming --console-socket-origins", bad, err)
		}
	}
}

// TestAdvertiseAPIURLForm: --advertise-api-url is refused unless other
// nodes would accept it as an apiUrl: a scheme, a host, a port.
func TestAdvertiseAPIURLForm(t *testing.T) {
	for _, ok := range []string{"http://10.0.0.1:9090", "https://realtime-0.realtime:9091/"} {
		if _, _, err := resolveArgs(t, env{"REALTIME_JWT_SECRET": "s"}, "--advertise-api-url", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:9090/prefix", "http://u:p@10.0.0.1:9090", "http://10.0.0.1:9090?x=1", "ftp://10.0.0.1"} {
		if _, _, err := resolveArgs(t, env{"REALTIME_JWT_SECRET": "s"}, "--advertise-api-url", bad); err == nil ||
			!strings.Contains(err.Error(), "--advertise-api-url") {
			t.Errorf("%s: error %v, want one naming --advertise-api-url", bad, err)
		}
	}
}
