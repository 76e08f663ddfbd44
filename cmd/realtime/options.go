package main

import (
	"time"
)

// serveOptions are the flags of `realtime serve`.
type serveOptions struct {
	Addr               string
	AdminAddr          string
	APIAddr            string
	AdvertiseAPIURL    string
	PeerAPIHosts       string
	ConsoleSockets     string
	Namespace          string
	NodeID             string
	MaxConnections     int
	MaxUserConnections int

	UpgradeTimeout              time.Duration
	MaxHeaderBytes              int
	MaxPendingHandshakes        int
	MaxPendingHandshakesPerAddr int
	TrustedProxies              string

	JWTAlg           string
	JWTSecretFile    string
	JWTPublicKeyFile string
	JWTIssuer        string
	JWTAudience      string
	APIKeyFile       string

	LogLevel  string
	LogFormat string
	Dev       bool

	TLSCert string
	TLSKey  string
	IO      string
	Workers int

	PingInterval       time.Duration
	PingTimeout        time.Duration
	MaxFrame           int
	OutboundQueueBytes int
	WriteDelay         time.Duration
	DrainPeriod        time.Duration
	StatsInterval      time.Duration
	TypingExpiry       time.Duration

	LimitMessages         int
	LimitReactions        int
	LimitTyping           int
	LimitJoins            int
	LimitConnects         int
	LimitWindow           time.Duration
	MaxContent            int
	MaxChatsPerConnection int

	HistorySize int
	HistoryTTL  time.Duration

	RedisURL            string
	RedisPrefix         string
	RedisSentinelMaster string
	RedisSentinelAddrs  string
	RedisClusterAddrs   string
	RedisTLS            bool
	RedisPartitions     int

	RTMURL      string
	RTMLeaseTTL time.Duration

	Pprof     bool
	GCPercent int
}

// serveFlags defines the flags of `realtime serve` on a new flagSet. The
// defaults are those of PROTOCOL.md section 3 and DESIGN.md.
func serveFlags(o *serveOptions) *flagSet {
	f := newFlagSet("serve", "Runs a node: WebSocket listener for socket.io-client v4 apps, admin listener for health, metrics and the server API.\n"+
		"Secrets come from the environment or files: REALTIME_JWT_SECRET or --jwt-secret-file, REALTIME_API_KEY or --api-key-file,\n"+
		"and REALTIME_REDIS_PASSWORD for a Sentinel-managed master (with --redis-url the password goes in the URL).")

	f.String(&o.Addr, "addr", ":8080", "public WebSocket listener address")
	f.String(&o.AdminAddr, "admin-addr", "127.0.0.1:9090", "admin listener: /healthz, /readyz, /metrics and the server API")
	f.String(&o.APIAddr, "api-addr", "", "server API (/api/...) on a listener of its own, off the admin listener; empty: on --admin-addr")
	f.StringShown(&o.AdvertiseAPIURL, "advertise-api-url", "http://<api-addr or admin-addr>", "where the other nodes reach this node's server API (the admin console's cross-node lookups): scheme, host and port, no path; an unspecified host becomes this machine's first non-loopback IP")
	f.String(&o.PeerAPIHosts, "peer-api-hosts", "private", "comma-separated hosts the admin console's cross-node calls may send the API key to, checked against the apiUrl each peer announces in Redis: CIDR prefixes, addresses, host names, *.domain, private (loopback, RFC 1918, 100.64.0.0/10, fc00::/7) or * (anywhere); a name not listed must resolve into a listed prefix")
	f.String(&o.ConsoleSockets, "console-socket-origins", "", "comma-separated ws:// or wss:// origins (e.g. wss://chat.example.com) the admin console's test console may connect to besides this node's public listener; its Content-Security-Policy allows no others")
	f.String(&o.Namespace, "namespace", "/messenger", "Socket.IO namespace of the chat events (\"/\" is served too)")
	f.StringShown(&o.NodeID, "node-id", "hostname-<6 random hex>", "this node's id in logs, presence and the cluster")
	f.Int(&o.MaxConnections, "max-connections", 10000, "connections per node; more are refused with 503 NODE_FULL")
	f.Int(&o.MaxUserConnections, "max-user-connections", 3, "connections per user across the cluster; more get CONNECTION_LIMIT")

	f.Duration(&o.UpgradeTimeout, "upgrade-timeout", 5*time.Second, "time from accept to the WebSocket upgrade, however slowly the request arrives; then the connection is closed")
	f.Int(&o.MaxHeaderBytes, "max-header-bytes", 8192, "upgrade request line and headers together; more is answered 431 HEADER_TOO_LARGE")
	f.Int(&o.MaxPendingHandshakesPerAddr, "max-pending-handshakes-per-ip", 32, "upgrades in progress per TCP peer address (an IPv6 /64 counts as one; trusted proxies exempt); one more closes that address's oldest")
	f.Int(&o.MaxPendingHandshakes, "max-pending-handshakes", 2048, "upgrades in progress on the node; one more closes the oldest of the address with the most")
	f.String(&o.TrustedProxies, "trusted-proxies", "", "comma-separated CIDR list of load balancers whose X-Forwarded-For is believed for the per-IP connect limit and logs (none: the TCP peer is the client)")

	f.String(&o.JWTAlg, "jwt-alg", "HS256", "JWT algorithm accepted: HS256, RS256 or ES256 (never taken from the token)")
	f.String(&o.JWTSecretFile, "jwt-secret-file", "", "file holding the HS256 secret (else REALTIME_JWT_SECRET)")
	f.String(&o.JWTPublicKeyFile, "jwt-public-key-file", "", "PEM public key for RS256 or ES256")
	f.String(&o.JWTIssuer, "jwt-issuer", "", "required iss claim (unchecked when empty)")
	f.String(&o.JWTAudience, "jwt-audience", "", "required aud claim (unchecked when empty)")
	f.String(&o.APIKeyFile, "api-key-file", "", "file holding the server API key (else REALTIME_API_KEY; no key disables the API)")

	f.String(&o.LogLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	f.StringShown(&o.LogFormat, "log-format", "json (console with --dev)", "log format: json or console")
	f.Bool(&o.Dev, "dev", false, "development mode: dev-secret JWT secret and dev-api-key API key unless given, open chat membership, console logs, prints a client snippet")

	f.String(&o.TLSCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves wss:// (goroutine reader)")
	f.String(&o.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.String(&o.IO, "io", "epoll", "connection reader: epoll (readiness loop and worker pool) or goroutine (one reader per connection)")
	f.Int(&o.Workers, "workers", 0, "epoll worker pool size (0: 8×GOMAXPROCS, at least 32)")
	f.Bool(&o.Pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on the admin address (keep that address internal)")
	f.Int(&o.GCPercent, "gc-percent", 50, "Go GC target (as GOGC): lower holds less memory per idle connection for a little more GC CPU; -1 leaves the runtime's GOGC setting alone")

	f.Duration(&o.PingInterval, "ping-interval", 25*time.Second, "Engine.IO ping interval")
	f.Duration(&o.PingTimeout, "ping-timeout", 20*time.Second, "close a connection that has not answered a ping within this time")
	f.Int(&o.MaxFrame, "max-frame", 65536, "largest WebSocket frame in bytes (Engine.IO maxPayload); larger closes the connection with 1009")
	f.Int(&o.OutboundQueueBytes, "outbound-queue-bytes", 1<<20, "per-connection outbound queue; a client that lets it fill is dropped as a slow consumer")
	f.Duration(&o.WriteDelay, "write-delay", 0, "hold a connection's first queued frame this long so the frames that follow go out in the same write: less CPU per delivery under heavy fan-out, that much added latency (0 writes at once)")
	f.Duration(&o.DrainPeriod, "drain-period", 20*time.Second, "on SIGTERM, close connections in batches spread over this period")
	f.Duration(&o.StatsInterval, "stats-interval", 10*time.Second, "period of the stats log line (0 disables it)")
	f.Duration(&o.TypingExpiry, "typing-expiry", 6*time.Second, "a typing_start not refreshed or stopped within this time is sent as a stop")

	f.Int(&o.LimitMessages, "limit-messages", 30, "send/edit/delete_message per user per window")
	f.Int(&o.LimitReactions, "limit-reactions", 60, "add/remove_reaction per user per window")
	f.Int(&o.LimitTyping, "limit-typing", 120, "typing_start/stop per user per window")
	f.Int(&o.LimitJoins, "limit-joins", 120, "join/leave_chat per user per window")
	f.Int(&o.LimitConnects, "limit-connects", 60, "connection attempts per IP address per window; more get 429 RATE_LIMITED")
	f.Duration(&o.LimitWindow, "limit-window", time.Minute, "the rate-limit window")
	f.Int(&o.MaxContent, "max-content", 4000, "message content length in characters")
	f.Int(&o.MaxChatsPerConnection, "max-chats-per-connection", 200, "chats one connection may join")

	f.Int(&o.HistorySize, "history-size", 1000, "events kept per chat for recovery with lastEventId")
	f.Duration(&o.HistoryTTL, "history-ttl", 24*time.Hour, "how long a chat's history is kept after its last event")

	f.String(&o.RedisURL, "redis-url", "", "Redis URL (redis:// or rediss://) for a cluster; empty runs the embedded memory engines")
	f.String(&o.RedisPrefix, "redis-prefix", "rt", "prefix of every Redis key and channel, so clusters can share a Redis")
	f.String(&o.RedisSentinelMaster, "redis-sentinel-master", "", "Sentinel master name (with --redis-sentinel-addrs)")
	f.String(&o.RedisSentinelAddrs, "redis-sentinel-addrs", "", "comma-separated Sentinel host:port list")
	f.String(&o.RedisClusterAddrs, "redis-cluster-addrs", "", "comma-separated host:port seed nodes of a Redis Cluster (7+; sharded pub/sub); password in REALTIME_REDIS_PASSWORD")
	f.Int(&o.RedisPartitions, "redis-cluster-partitions", 128, "Redis Cluster: hash-tag partitions chats are spread over (at most one pub/sub connection each per node); same on every node, changing it leaves history behind; about 16 per master spreads load evenly")
	f.Bool(&o.RedisTLS, "redis-tls", false, "TLS to Redis Cluster nodes or the Sentinel-managed master, as rediss:// does for --redis-url (system CA roots)")

	f.String(&o.RTMURL, "rtm-url", "", "WebSocket URL of the RTM provider; empty disables the RTM bridge")
	f.Duration(&o.RTMLeaseTTL, "rtm-lease-ttl", 10*time.Second, "TTL of the RTM leader lease")
	return f
}

// tokenOptions are the flags of `realtime token`.
type tokenOptions struct {
	User          string
	Profiles      string
	Name          string
	TTL           time.Duration
	JWTSecretFile string
	JWTIssuer     string
	JWTAudience   string
	Dev           bool
}

func tokenFlags(o *tokenOptions) *flagSet {
	f := newFlagSet("token", "Prints an HS256 JWT for a user, signed with the configured secret (REALTIME_JWT_SECRET or --jwt-secret-file; dev-secret with --dev).")
	f.String(&o.User, "user", "", "user id (the sub claim; required)")
	f.String(&o.Profiles, "profiles", "", "comma-separated RTM profile ids the user operates (the profiles claim)")
	f.String(&o.Name, "name", "", "display name (the name claim)")
	f.Duration(&o.TTL, "ttl", time.Hour, "validity from now (the exp claim)")
	f.String(&o.JWTSecretFile, "jwt-secret-file", "", "file holding the HS256 secret (else REALTIME_JWT_SECRET)")
	f.String(&o.JWTIssuer, "jwt-issuer", "", "iss claim")
	f.String(&o.JWTAudience, "jwt-audience", "", "aud claim")
	f.Bool(&o.Dev, "dev", false, "sign with dev-secret unless a secret is given")
	return f
}
