package node

import (
	"bytes"
	"net/netip"
)

// trustedProxies are the load balancers whose X-Forwarded-For header the
// node believes (Config.TrustedProxies); empty by default, so a client
// cannot choose the address its connect limit is counted against.
type trustedProxies []netip.Prefix

// contains reports whether a is a trusted proxy.
func (tp trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range tp {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address a request comes from, for the per-address
// connect limit and logs: the TCP peer, unless the peer is a trusted proxy;
// then the rightmost X-Forwarded-For hop that is not a trusted proxy (each
// proxy appends the address it received the request from, so everything to
// the left of the first untrusted hop was written by the client and is not
// believed). xff is the header's values in order, joined by commas. A hop
// that does not parse stops the walk at the last address believed.
func (tp trustedProxies) clientAddr(peer netip.Addr, xff []byte) netip.Addr {
	client := peer.Unmap()
	if len(tp) == 0 || !tp.contains(client) {
		return client
	}
	for rest := xff; len(rest) > 0 && tp.contains(client); {
		hop := rest
		if i := bytes.LastIndexByte(rest, ','); i >= 0 {
			hop, rest = rest[i+1:], rest[:i]
		} else {
			rest = nil
		}
		a, ok := parseHop(bytes.TrimSpace(hop))
		if !ok {
			break
		}
		client = a
	}
	return client
}

// parseHop reads one X-Forwarded-For entry: an IP address, possibly with a
// port ("203.0.113.7:4711", "[2001:db8::1]:4711").
func parseHop(b []byte) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(string(b)); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(string(b)); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
