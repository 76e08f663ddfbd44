package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Where the admin console's cross-node calls may go. A node asks a peer's
// server API at the apiUrl the peer announced in the registry, sending this
// node's API key; whoever can write the registry (Redis) can announce any
// URL, so the URL is checked before the key goes anywhere:
//
//   - only http:// or https:// with a host and an optional port: no
//     credentials, path, query or fragment, at most peerMaxURL bytes;
//   - https:// only when this node advertises an https:// apiUrl itself;
//   - the host allowed by Config.PeerAPIHosts: an address in one of its
//     prefixes, or a name it lists; any other name only when the address
//     the connection is made to lies in one of its prefixes (checked at
//     connect time, so DNS answering differently later does not help);
//   - no HTTP proxy from the environment, no redirect followed.
//
// A refused peer is named in the console's answer and logged; nothing is
// sent to it.

// PeerAPIHostsPrivate is the PeerAPIHosts entry (and the default) naming
// the loopback and private address ranges: RFC 1918, the RFC 6598 shared
// space many Kubernetes networks use, and IPv6 unique local addresses.
// Link-local addresses (cloud metadata services) are not among them.
const PeerAPIHostsPrivate = "private"

var privatePrefixes = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// peerMaxURL bounds an announced apiUrl.
const peerMaxURL = 512

// errPeerRefused marks a peer whose apiUrl the policy refuses.
var errPeerRefused = errors.New("refused: the API key is not sent there")

// peerPolicy is the parsed Config.PeerAPIHosts (and the scheme rule). It is
// not changed after newPeerPolicy.
type peerPolicy struct {
	spec      string         // the entries as configured, for messages
	any       bool           // "*": any host
	prefixes  []netip.Prefix // addresses the key may go to
	names     []string       // host names listed exactly, lower case
	suffixes  []string       // ".example.internal" of "*.example.internal"
	httpsOnly bool           // this node advertises https: so must its peers
}

// CheckPeerAPIHosts reports whether entries are valid Config.PeerAPIHosts
// (an error wrapping ErrBadConfig names the first that is not).
func CheckPeerAPIHosts(entries []string) error {
	_, err := newPeerPolicy(entries, "")
	return err
}

// CheckAPIURL reports whether raw has the form peers accept for an apiUrl
// (Config.APIURL): http:// or https://, a host and an optional port, no
// credentials, path, query or fragment, at most peerMaxURL bytes.
func CheckAPIURL(raw string) error {
	anyHost := &peerPolicy{any: true, spec: "*"}
	if _, err := anyHost.target(raw); err != nil {
		return fmt.Errorf("%w: API URL %q: want http:// or https://, a host and an optional port, nothing else (at most %d bytes)",
			ErrBadConfig, truncate(raw, 100), peerMaxURL)
	}
	return nil
}

// newPeerPolicy parses entries (empty: PeerAPIHostsPrivate). Each is "*",
// "private", a CIDR prefix, an IP address, a host name or "*." and a
// domain (any name below it).
func newPeerPolicy(entries []string, ownAPIURL string) (*peerPolicy, error) {
	if len(entries) == 0 {
		entries = []string{PeerAPIHostsPrivate}
	}
	p := &peerPolicy{spec: strings.Join(entries, ","),
		httpsOnly: strings.HasPrefix(strings.ToLower(ownAPIURL), "https://")}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "*":
			p.any = true
		case e == PeerAPIHostsPrivate:
			p.prefixes = append(p.prefixes, privatePrefixes...)
		case strings.Contains(e, "/"):
			pfx, err := netip.ParsePrefix(e)
			if err != nil || pfx.Addr().Zone() != "" {
				return nil, fmt.Errorf("%w: peer API host %q is not a CIDR prefix", ErrBadConfig, e)
			}
			p.prefixes = append(p.prefixes, unmapPrefix(pfx))
		case strings.HasPrefix(e, "*."):
			if !validHostName(e[2:]) {
				return nil, fmt.Errorf("%w: peer API host %q: want *.<domain>", ErrBadConfig, e)
			}
			p.suffixes = append(p.suffixes, e[1:])
		default:
			if a, err := netip.ParseAddr(e); err == nil && a.Zone() == "" {
				a = a.Unmap()
				p.prefixes = append(p.prefixes, netip.PrefixFrom(a, a.BitLen()))
			} else if validHostName(e) {
				p.names = append(p.names, e)
			} else {
				return nil, fmt.Errorf("%w: peer API host %q is not *, %s, a CIDR prefix, an address or a host name", ErrBadConfig, e, PeerAPIHostsPrivate)
			}
		}
	}
	return p, nil
}

// unmapPrefix turns ::ffff:10.0.0.0/104 into 10.0.0.0/8.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// validHostName reports whether s is a DNS name: letters, digits, '-' and
// '_' in dot-separated labels of at most 63 bytes, at most 253 in all.
func validHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// addrAllowed reports whether the key may be sent to address a.
func (p *peerPolicy) addrAllowed(a netip.Addr) bool {
	if p.any {
		return true
	}
	if a.Zone() != "" {
		return false
	}
	a = a.Unmap()
	for _, pfx := range p.prefixes {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// nameListed reports whether host name h is listed (or "*" allows any
// host): then any address it resolves to is accepted.
func (p *peerPolicy) nameListed(h string) bool {
	if p.any {
		return true
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	for _, n := range p.names {
		if h == strings.TrimSuffix(n, ".") {
			return true
		}
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(h, strings.TrimSuffix(s, ".")) {
			return true
		}
	}
	return false
}

// target checks an announced apiUrl and returns its scheme://host[:port]
// (the paths of the server API are appended to it), or why the key may not
// be sent there (wrapping errPeerRefused).
func (p *peerPolicy) target(raw string) (string, error) {
	refuse := func(why string, args ...any) (string, error) {
		return "", fmt.Errorf("apiUrl %q %w (%s)", truncate(raw, 100), errPeerRefused, fmt.Sprintf(why, args...))
	}
	if len(raw) > peerMaxURL {
		return refuse("longer than %d bytes", peerMaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return refuse("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return refuse("not http:// or https://")
	case u.Opaque != "" || u.Host == "" || strings.HasSuffix(u.Host, ":"):
		return refuse("no host")
	case u.User != nil:
		return refuse("it carries credentials")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return refuse("it has a path, query or fragment")
	case p.httpsOnly && u.Scheme != "https":
		return refuse("this node's own apiUrl is https://, so peers must use https:// too")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return refuse("bad port")
		}
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if !p.addrAllowed(a) {
			return refuse("address %s is not among the peer API hosts %s", host, p.spec)
		}
	} else if !validHostName(host) {
		return refuse("bad host name")
	} else if !p.nameListed(host) && len(p.prefixes) == 0 {
		return refuse("host %s is not among the peer API hosts %s", host, p.spec)
	}
	return u.Scheme + "://" + u.Host, nil
}

// dialContext connects to a peer. Unless addr names a listed host, the
// address connected to must be allowed: a name resolving outside the
// prefixes is refused before any byte is sent.
func (p *peerPolicy) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("node: dial peer %q: %w", addr, err)
	}
	d := net.Dialer{Timeout: peerTimeout, KeepAlive: 30 * time.Second}
	if _, notAddr := netip.ParseAddr(host); notAddr != nil && p.nameListed(host) {
		return d.DialContext(ctx, network, addr)
	}
	d.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !p.addrAllowed(ap.Addr()) {
			return fmt.Errorf("%s resolves to %s: %w (not among the peer API hosts %s)", host, address, errPeerRefused, p.spec)
		}
		return nil
	}
	return d.DialContext(ctx, network, addr)
}

// errPeerRedirect: peers' server APIs never redirect; following one could
// carry the key elsewhere.
var errPeerRedirect = errors.New("answered with a redirect, which is not followed")

// newPeerClient is the HTTP client of cross-node calls under policy p: no
// proxy from the environment (the key would go to the proxy), no redirect.
func newPeerClient(p *peerPolicy) *http.Client {
	return &http.Client{
		Timeout: peerTimeout,
		Transport: &http.Transport{
			DialContext:         p.dialContext,
			TLSHandshakeTimeout: peerTimeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return errPeerRedirect },
	}
}
