package node

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/limits"
	"github.com/anchat/realtime/membership"
	"github.com/anchat/realtime/presence"
	"github.com/anchat/realtime/registry"
)

// IOMode selects how connections are read.
type IOMode string

const (
	// IOEpoll: one epoll readiness loop feeding a bounded worker pool; no
	// goroutine per idle connection. Plain TCP only.
	IOEpoll IOMode = "epoll"
	// IOGoroutine: one reading goroutine per connection (used for TLS, and
	// for comparison).
	IOGoroutine IOMode = "goroutine"
)

// JWTConfig configures token verification. Exactly one of Secret (HS256) or
// PublicKey (RS256/ES256) is set, matching Alg.
type JWTConfig struct {
	Alg       string           // "HS256" (default), "RS256" or "ES256"; never taken from the token
	Secret    []byte           // HS256 shared secret
	PublicKey crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey
	Issuer    string           // optional: required "iss"
	Audience  string           // optional: required in "aud"
}

// Limits are the per-user and per-address limits of PROTOCOL.md section 3.
// Zero fields take the defaults noted.
type Limits struct {
	MaxUserConnections int // per user, cluster-wide (3)
	MaxConnections     int // per node (10,000)
	Messages           int // send/edit/delete per user per minute (30)
	Reactions          int // add/remove reaction per user per minute (60)
	Typing             int // typing start/stop per user per minute (120)
	Joins              int // join/leave per user per minute (120)
	Connects           int // connection attempts per IP per minute (60)
	ContentChars       int // content length in characters (4,000)
	Attachments        int // attachments per message (10)
	AttachmentBytes    int // JSON bytes per attachment (1,024)
	MaxFrame           int // WebSocket frame / maxPayload bytes (65,536)
	ChatsPerConn       int // chats joined per connection (200)
	// Window is the rate-limit window (one minute); tests may shorten it.
	Window time.Duration
}

// Engines are the cluster-wide concerns; memory or Redis implementations.
// They belong to the caller, which built them: the node never closes them
// (close them after Run returns).
type Engines struct {
	Bus        bus.Broker
	Presence   presence.Presence
	Membership membership.Store
	Limiter    limits.Limiter
	// Registry lists the live nodes for the admin console (each node
	// announces itself there); nil: a registry of this node alone.
	Registry registry.Registry
	// Ping checks the engine's reachability for /readyz; nil means always reachable.
	Ping func() error
	// AppendLimited, when set, performs a chat write's rate-limit check (a
	// Window limit on limitKey, sharing Limiter's budget) and the write
	// itself (send, edit, delete, reaction) in one engine call, one Redis
	// round trip: allowed false (nothing done) with retryAfter when the
	// limit refuses. Nil: Limiter.Allow, then Bus.Append.
	AppendLimited func(ctx context.Context, chatID string, op bus.Op, limitKey string, l limits.Limit) (res bus.Result, allowed bool, retryAfter time.Duration, err error)
	// PublishLimited, when set, does the same for an ephemeral chat event
	// (typing_start, typing_stop): the Window limit on limitKey and the
	// publish in one call, one Redis round trip; allowed false (nothing
	// published) with retryAfter when the limit refuses. Nil:
	// Limiter.Allow, then Bus.Publish.
	PublishLimited func(ctx context.Context, ch bus.Channel, event string, data json.RawMessage, limitKey string, l limits.Limit) (allowed bool, retryAfter time.Duration, err error)
}

// Config configures a Node. Zero values take the defaults noted.
type Config struct {
	Addr      string // public WebSocket listener (":8080")
	AdminAddr string // health, metrics, server API ("127.0.0.1:9090")
	// APIAddr, when set, serves the server API on a listener of its own
	// instead of AdminAddr (which then has no /api routes). Empty: the API
	// is on AdminAddr.
	APIAddr   string
	Namespace string // the chat namespace ("/messenger"); "/" is always served too
	NodeID    string // required

	IO      IOMode // IOEpoll (default; IOGoroutine when TLS is set)
	TLSCert string // with TLSKey: serve wss (goroutine reader)
	TLSKey  string
	Workers int // epoll worker pool size (default 8×GOMAXPROCS, at least 32)

	PingInterval time.Duration // 25 s
	PingTimeout  time.Duration // 20 s
	// UpgradeTimeout bounds the HTTP upgrade from accept to the 101,
	// however slowly the request arrives (5 s).
	UpgradeTimeout time.Duration
	// MaxHeaderBytes bounds the upgrade request line and headers together;
	// a longer request is answered 431 HEADER_TOO_LARGE and closed (8 KiB).
	MaxHeaderBytes int
	// MaxPendingHandshakesPerAddr bounds the upgrades in progress from one
	// TCP peer address (32; trusted proxies are exempt). One more closes the
	// address's oldest pending handshake.
	MaxPendingHandshakesPerAddr int
	// MaxPendingHandshakes bounds the upgrades in progress on the node
	// (2,048). One more closes the oldest pending handshake of the address
	// with the most. Pending handshakes never count toward
	// Limits.MaxConnections.
	MaxPendingHandshakes int
	// TrustedProxies are the load balancers whose X-Forwarded-For header is
	// believed for the per-address connect limit and for logs (the rightmost
	// hop that is not a trusted proxy). None by default: the TCP peer is the
	// client. The pending-handshake caps always use the TCP peer.
	TrustedProxies []netip.Prefix
	// ConnectTimeout closes a connection that upgraded but did not connect a
	// namespace in time (10 s).
	ConnectTimeout time.Duration
	// OutboundQueueBytes bounds each connection's outbound queue; a client that
	// lets it fill is disconnected as a slow consumer (1 MiB).
	OutboundQueueBytes int
	// WriteTimeout bounds one blocked write to a client (10 s).
	WriteTimeout time.Duration
	// WriteDelay holds a connection's first queued frame this long before
	// writing, so frames that follow meanwhile go out in the same system
	// call: less CPU per delivery under fan-out, up to this much added
	// latency. 0 (the default) writes at once.
	WriteDelay time.Duration
	// TypingExpiry ends a typing start not refreshed or stopped (6 s).
	TypingExpiry time.Duration
	// DrainPeriod spreads connection closes on shutdown (20 s).
	DrainPeriod time.Duration
	// StatsInterval is the period of the "stats" log line (10 s; <0 disables).
	StatsInterval time.Duration
	// HistoryReplay caps missed events returned by join_chat (100).
	HistoryReplay int

	JWT    JWTConfig
	APIKey string // server API bearer key; empty disables the API routes
	// APIURL is where the other nodes reach this node's server API (the
	// admin console's cross-node lookups); default http://<admin address>,
	// an unspecified host replaced by this machine's first non-loopback IP.
	// A scheme, a host and an optional port only (CheckAPIURL): peers send
	// nothing to a URL with more.
	APIURL string
	// PeerAPIHosts are where the cross-node calls may send the API key:
	// the hosts of the apiUrls peers announce in the registry that this
	// node accepts (peers.go). Each entry is "*" (anywhere),
	// PeerAPIHostsPrivate, a CIDR prefix, an IP address, a host name, or
	// "*." and a domain; a host name not listed is accepted only when the
	// address connected to is in a listed prefix. Empty: PeerAPIHostsPrivate.
	PeerAPIHosts []string
	// ConsoleSocketOrigins are more ws:// or wss:// origins the admin
	// console's test console may connect to (a load balancer in front of
	// the nodes), besides this node's public listener; the console's
	// Content-Security-Policy allows no others. None by default.
	ConsoleSocketOrigins []string
	// Dev opens chat membership to any authenticated user.
	Dev bool
	// Pprof serves net/http/pprof at /debug/pprof/ on the admin address.
	Pprof bool

	Limits  Limits
	Engines Engines
	// RTM is the RTM bridge; nil disables the RTM routes and events.
	RTM    RTM
	Logger zerolog.Logger
	// Version names the build in realtime_build_info and the admin
	// console ("dev").
	Version string
	// Collectors are more figures served on /metrics (cmd/realtime passes
	// the Redis command metrics of internal/redismetrics).
	Collectors []prometheus.Collector
	// Now is the clock (time.Now); tests may drive it.
	Now func() time.Time
}

// Config errors.
var (
	ErrNoNodeID  = errors.New("node: NodeID is required")
	ErrNoJWTKey  = errors.New("node: a JWT secret (HS256) or public key (RS256/ES256) is required")
	ErrBadConfig = errors.New("node: bad configuration")
)

func (c *Config) setDefaults() error {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.AdminAddr == "" {
		c.AdminAddr = "127.0.0.1:9090"
	}
	if c.Namespace == "" {
		c.Namespace = "/messenger"
	}
	if c.Namespace[0] != '/' {
		return fmt.Errorf("%w: namespace %q must start with /", ErrBadConfig, c.Namespace)
	}
	if c.NodeID == "" {
		return ErrNoNodeID
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		if c.TLSCert == "" || c.TLSKey == "" {
			return fmt.Errorf("%w: TLS needs both a certificate and a key", ErrBadConfig)
		}
		if c.IO == IOEpoll {
			return fmt.Errorf("%w: --io epoll cannot serve TLS; use --io goroutine", ErrBadConfig)
		}
		c.IO = IOGoroutine
	}
	if c.IO == "" {
		c.IO = IOEpoll
	}
	if c.IO != IOEpoll && c.IO != IOGoroutine {
		return fmt.Errorf("%w: io mode %q (want epoll or goroutine)", ErrBadConfig, c.IO)
	}
	def(&c.PingInterval, 25*time.Second)
	def(&c.PingTimeout, 20*time.Second)
	def(&c.UpgradeTimeout, 5*time.Second)
	defInt(&c.MaxHeaderBytes, 8<<10)
	defInt(&c.MaxPendingHandshakesPerAddr, 32)
	defInt(&c.MaxPendingHandshakes, 2048)
	if c.UpgradeTimeout < 0 || c.MaxHeaderBytes < 512 || c.MaxPendingHandshakesPerAddr < 1 ||
		c.MaxPendingHandshakes < c.MaxPendingHandshakesPerAddr {
		return fmt.Errorf("%w: handshake limits: upgrade timeout %v, header bytes %d (at least 512), pending per address %d, pending %d (at least per address)",
			ErrBadConfig, c.UpgradeTimeout, c.MaxHeaderBytes, c.MaxPendingHandshakesPerAddr, c.MaxPendingHandshakes)
	}
	proxies := make([]netip.Prefix, 0, len(c.TrustedProxies)) // not the caller's array
	for _, p := range c.TrustedProxies {
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if !p.IsValid() {
			return fmt.Errorf("%w: trusted proxy %q is not a valid CIDR prefix", ErrBadConfig, p)
		}
		proxies = append(proxies, p.Masked())
	}
	c.TrustedProxies = proxies
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	if c.WriteDelay < 0 || c.WriteDelay > time.Second {
		return fmt.Errorf("%w: write delay %v (want 0 to 1s)", ErrBadConfig, c.WriteDelay)
	}
	def(&c.TypingExpiry, 6*time.Second)
	def(&c.DrainPeriod, 20*time.Second)
	def(&c.StatsInterval, 10*time.Second)
	defInt(&c.OutboundQueueBytes, 1<<20)
	defInt(&c.HistoryReplay, 100)
	l := &c.Limits
	defInt(&l.MaxUserConnections, 3)
	defInt(&l.MaxConnections, 10000)
	defInt(&l.Messages, 30)
	defInt(&l.Reactions, 60)
	defInt(&l.Typing, 120)
	defInt(&l.Joins, 120)
	defInt(&l.Connects, 60)
	defInt(&l.ContentChars, 4000)
	defInt(&l.Attachments, 10)
	defInt(&l.AttachmentBytes, 1024)
	defInt(&l.MaxFrame, 65536)
	defInt(&l.ChatsPerConn, 200)
	def(&l.Window, time.Minute)
	if c.JWT.Alg == "" {
		c.JWT.Alg = "HS256"
	}
	switch c.JWT.Alg {
	case "HS256":
		if len(c.JWT.Secret) == 0 {
			return ErrNoJWTKey
		}
	case "RS256", "ES256":
		if c.JWT.PublicKey == nil {
			return ErrNoJWTKey
		}
	default:
		return fmt.Errorf("%w: jwt alg %q (want HS256, RS256 or ES256)", ErrBadConfig, c.JWT.Alg)
	}
	if c.APIURL != "" {
		if err := CheckAPIURL(c.APIURL); err != nil {
			return err
		}
	}
	if _, err := newPeerPolicy(c.PeerAPIHosts, c.APIURL); err != nil {
		return err
	}
	origins := make([]string, 0, len(c.ConsoleSocketOrigins)) // not the caller's array
	for _, o := range c.ConsoleSocketOrigins {
		origin, err := SocketOrigin(o)
		if err != nil {
			return err
		}
		origins = append(origins, origin)
	}
	c.ConsoleSocketOrigins = origins
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Engines.Registry == nil {
		c.Engines.Registry = registry.NewMemory()
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Engines.Bus == nil || c.Engines.Presence == nil || c.Engines.Membership == nil ||
		c.Engines.Limiter == nil {
		return fmt.Errorf("%w: every engine must be set", ErrBadConfig)
	}
	return nil
}
