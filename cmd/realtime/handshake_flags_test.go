package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHandshakeFlags(t *testing.T) {
	_, r, err := resolveArgs(t, env{"REALTIME_JWT_SECRET": "s"})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.cfg; c.UpgradeTimeout != 5*time.Second || c.MaxHeaderBytes != 8192 || c.MaxPendingHandshakesPerAddr != 32 ||
		c.MaxPendingHandshakes != 2048 || len(c.TrustedProxies) != 0 {
		t.Errorf("defaults: timeout %v header %d per address %d total %d proxies %v", c.UpgradeTimeout, c.MaxHeaderBytes,
			c.MaxPendingHandshakesPerAddr, c.MaxPendingHandshakes, c.TrustedProxies)
	}

	_, r, err = resolveArgs(t, env{"REALTIME_JWT_SECRET": "s", "REALTIME_MAX_HEADER_BYTES": "4096",
		"REALTIME_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,2001:db8::/32"},
		"--upgrade-timeout", "2s", "--max-pending-handshakes-per-ip", "8", "--max-pending-handshakes", "100")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if c := r.cfg; c.UpgradeTimeout != 2*time.Second || c.MaxHeaderBytes != 4096 || c.MaxPendingHandshakesPerAddr != 8 ||
		c.MaxPendingHandshakes != 100 || !slices.Equal(c.TrustedProxies, want) {
		t.Errorf("given: timeout %v header %d per address %d total %d proxies %v", c.UpgradeTimeout, c.MaxHeaderBytes,
			c.MaxPendingHandshakesPerAddr, c.MaxPendingHandshakes, c.TrustedProxies)
	}

	for _, tc := range []struct {
		env  env
		args []string
		want string
	}{
		{env{"REALTIME_TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"}, nil, "REALTIME_TRUSTED_PROXIES"},
		{nil, []string{"--trusted-proxies", "10.0.0.0/33"}, "--trusted-proxies"},
		{nil, []string{"--max-header-bytes", "100"}, "--max-header-bytes"},
		{nil, []string{"--max-pending-handshakes-per-ip", "0"}, "--max-pending-handshakes-per-ip"},
		{nil, []string{"--max-pending-handshakes", "10", "--max-pending-handshakes-per-ip", "20"}, "--max-pending-handshakes"},
		{nil, []string{"--upgrade-timeout", "0s"}, "--upgrade-timeout"},
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
