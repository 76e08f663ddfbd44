package main

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/internal/flaglist"
	"github.com/anchat/realtime/node"
)

// Development defaults of --dev (PROTOCOL.md section 4).
const (
	devJWTSecret = "dev-secret"
	devAPIKey    = "dev-api-key"
)

// Environment variables that carry secrets (they have no flag: a secret on a
// command line shows in ps).
const (
	envJWTSecret = "REALTIME_JWT_SECRET"
	envAPIKey    = "REALTIME_API_KEY"
)

// secret is a resolved secret and where it came from.
type secret struct {
	value  string
	source string // "--jwt-secret-file", "REALTIME_JWT_SECRET", "--dev default"; "" when unset
}

// resolveSecret reads a secret from file (flag fileFlag, trailing newline
// trimmed) or else from the environment variable env. Giving both is an
// error: one of them would be silently ignored.
func resolveSecret(f *flagSet, file, fileFlag, env string, getenv getenvFunc) (secret, error) {
	envVal, envOK := getenv(env)
	envOK = envOK && envVal != ""
	if file != "" {
		if envOK {
			return secret{}, fmt.Errorf("both %s and %s are set; use one", f.source(fileFlag), env)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return secret{}, fmt.Errorf("%s: %v", f.source(fileFlag), err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return secret{}, fmt.Errorf("%s: file %s is empty", f.source(fileFlag), file)
		}
		return secret{value: v, source: f.source(fileFlag)}, nil
	}
	if envOK {
		return secret{value: envVal, source: env}, nil
	}
	return secret{}, nil
}

// jwtKey resolves the verification key for o.JWTAlg.
func jwtKey(o *serveOptions, f *flagSet, getenv getenvFunc) (node.JWTConfig, secret, error) {
	cfg := node.JWTConfig{Alg: o.JWTAlg, Issuer: o.JWTIssuer, Audience: o.JWTAudience}
	switch o.JWTAlg {
	case "HS256":
		if o.JWTPublicKeyFile != "" {
			return cfg, secret{}, fmt.Errorf("%s is for RS256 or ES256, but %s is HS256", f.source("jwt-public-key-file"), f.source("jwt-alg"))
		}
		s, err := resolveSecret(f, o.JWTSecretFile, "jwt-secret-file", envJWTSecret, getenv)
		if err != nil {
			return cfg, s, err
		}
		if s.value == "" {
			if !o.Dev {
				return cfg, s, fmt.Errorf("no JWT secret: set %s or --jwt-secret-file (or run with --dev)", envJWTSecret)
			}
			s = secret{value: devJWTSecret, source: "--dev default"}
		}
		cfg.Secret = []byte(s.value)
		return cfg, s, nil
	case "RS256", "ES256":
		if o.JWTSecretFile != "" {
			return cfg, secret{}, fmt.Errorf("%s is for HS256, but %s is %s", f.source("jwt-secret-file"), f.source("jwt-alg"), o.JWTAlg)
		}
		if o.JWTPublicKeyFile == "" {
			return cfg, secret{}, fmt.Errorf("no JWT public key: %s needs --jwt-public-key-file", o.JWTAlg)
		}
		key, err := loadPublicKey(o.JWTAlg, o.JWTPublicKeyFile)
		if err != nil {
			return cfg, secret{}, fmt.Errorf("%s: %v", f.source("jwt-public-key-file"), err)
		}
		cfg.PublicKey = key
		return cfg, secret{}, nil
	default:
		return cfg, secret{}, fmt.Errorf("%s: unknown algorithm %q (want HS256, RS256 or ES256)", f.source("jwt-alg"), o.JWTAlg)
	}
}

// loadPublicKey parses a PEM public key (or certificate) and refuses one that
// does not fit alg: the key type is what pins the algorithm family.
func loadPublicKey(alg, file string) (crypto.PublicKey, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	switch alg {
	case "RS256":
		k, err := jwt.ParseRSAPublicKeyFromPEM(pem)
		if err != nil {
			return nil, fmt.Errorf("not an RSA public key (RS256 needs one): %v", err)
		}
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too short (at least 2048)", k.N.BitLen())
		}
		return k, nil
	case "ES256":
		k, err := jwt.ParseECPublicKeyFromPEM(pem)
		if err != nil {
			return nil, fmt.Errorf("not an ECDSA public key (ES256 needs a P-256 one): %v", err)
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		return k, nil
	}
	return nil, fmt.Errorf("no public key for %s", alg)
}

// defaultNodeID is the hostname plus "-" and six random hex digits.
func defaultNodeID(hostname func() (string, error)) string {
	h, err := hostname()
	if err != nil || h == "" {
		h = "realtime"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return h + "-" + hex.EncodeToString(b[:])
}

// resolved is a serve configuration ready for node.New, plus what the command
// itself needs around it.
type resolved struct {
	cfg       node.Config
	jwtSecret secret // HS256 only
	apiKey    secret
	logFormat string
}

// resolve checks the options and turns them into a node configuration
// (engines and logger excluded). Errors name the flag or variable at fault.
func resolve(o *serveOptions, f *flagSet, getenv getenvFunc, hostname func() (string, error)) (*resolved, error) {
	r := &resolved{}
	if o.NodeID == "" {
		o.NodeID = defaultNodeID(hostname)
	}
	r.logFormat = o.LogFormat
	if r.logFormat == "" {
		r.logFormat = "json"
		if o.Dev {
			r.logFormat = "console"
		}
	}
	if r.logFormat != "json" && r.logFormat != "console" {
		return nil, fmt.Errorf("%s: %q (want json or console)", f.source("log-format"), o.LogFormat)
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		return nil, fmt.Errorf("%s: %v", f.source("log-level"), err)
	}
	if o.Namespace == "" || o.Namespace[0] != '/' {
		return nil, fmt.Errorf("%s: %q must start with /", f.source("namespace"), o.Namespace)
	}
	if o.IO != string(node.IOEpoll) && o.IO != string(node.IOGoroutine) {
		return nil, fmt.Errorf("%s: %q (want epoll or goroutine)", f.source("io"), o.IO)
	}
	io := node.IOMode(o.IO)
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, fmt.Errorf("TLS needs both --tls-cert and --tls-key")
	}
	if o.TLSCert != "" && io == node.IOEpoll {
		if f.isGiven("io") {
			return nil, fmt.Errorf("%s epoll cannot serve TLS; use --io goroutine", f.source("io"))
		}
		io = node.IOGoroutine
	}
	for _, c := range []struct {
		name string
		v    int
		min  int
	}{
		{"max-connections", o.MaxConnections, 1},
		{"max-user-connections", o.MaxUserConnections, 1},
		{"max-header-bytes", o.MaxHeaderBytes, 512},
		{"max-pending-handshakes-per-ip", o.MaxPendingHandshakesPerAddr, 1},
		{"max-pending-handshakes", o.MaxPendingHandshakes, max(1, o.MaxPendingHandshakesPerAddr)},
		{"workers", o.Workers, 0},
		{"max-frame", o.MaxFrame, 1024},
		{"outbound-queue-bytes", o.OutboundQueueBytes, 4096},
		{"limit-messages", o.LimitMessages, 1},
		{"limit-reactions", o.LimitReactions, 1},
		{"limit-typing", o.LimitTyping, 1},
		{"limit-joins", o.LimitJoins, 1},
		{"limit-connects", o.LimitConnects, 1},
		{"max-content", o.MaxContent, 1},
		{"max-chats-per-connection", o.MaxChatsPerConnection, 1},
		{"history-size", o.HistorySize, 1},
	} {
		if c.v < c.min {
			return nil, fmt.Errorf("%s: %d is below the minimum %d", f.source(c.name), c.v, c.min)
		}
	}
	for _, c := range []struct {
		name string
		v    time.Duration
		zero bool // whether 0 is allowed
	}{
		{"upgrade-timeout", o.UpgradeTimeout, false},
		{"ping-interval", o.PingInterval, false},
		{"ping-timeout", o.PingTimeout, false},
		{"drain-period", o.DrainPeriod, true},
		{"stats-interval", o.StatsInterval, true},
		{"typing-expiry", o.TypingExpiry, false},
		{"limit-window", o.LimitWindow, false},
		{"history-ttl", o.HistoryTTL, false},
		{"rtm-lease-ttl", o.RTMLeaseTTL, false},
	} {
		if c.v < 0 || (c.v == 0 && !c.zero) {
			return nil, fmt.Errorf("%s: %v must be positive", f.source(c.name), c.v)
		}
	}
	if (o.RedisSentinelMaster == "") != (o.RedisSentinelAddrs == "") {
		return nil, fmt.Errorf("sentinel needs both --redis-sentinel-master and --redis-sentinel-addrs")
	}
	if o.RedisURL != "" && o.RedisSentinelMaster != "" {
		return nil, fmt.Errorf("use either --redis-url or the --redis-sentinel-* flags, not both")
	}
	if o.RedisClusterAddrs != "" && (o.RedisURL != "" || o.RedisSentinelMaster != "" || o.RedisSentinelAddrs != "") {
		return nil, fmt.Errorf("use either --redis-cluster-addrs, --redis-url or the --redis-sentinel-* flags, not two of them")
	}
	if o.AdvertiseAPIURL != "" {
		if err := node.CheckAPIURL(o.AdvertiseAPIURL); err != nil {
			return nil, fmt.Errorf("%s: %q is not an http:// or https:// URL of a host and an optional port (other nodes refuse a path, query or credentials)", f.source("advertise-api-url"), o.AdvertiseAPIURL)
		}
	}
	if err := node.CheckPeerAPIHosts(flaglist.Split(o.PeerAPIHosts)); err != nil {
		return nil, fmt.Errorf("%s: %v", f.source("peer-api-hosts"), err)
	}
	for _, origin := range flaglist.Split(o.ConsoleSockets) {
		if _, err := node.SocketOrigin(origin); err != nil {
			return nil, fmt.Errorf("%s: %v", f.source("console-socket-origins"), err)
		}
	}
	if o.RedisPartitions < 1 || o.RedisPartitions > 16384 {
		return nil, fmt.Errorf("%s: %d must be between 1 and 16384", f.source("redis-cluster-partitions"), o.RedisPartitions)
	}
	if o.RedisTLS && o.RedisURL != "" {
		return nil, fmt.Errorf("--redis-tls: with --redis-url use the rediss:// scheme instead")
	}
	if o.RedisTLS && o.RedisClusterAddrs == "" && o.RedisSentinelMaster == "" {
		return nil, fmt.Errorf("--redis-tls needs --redis-cluster-addrs or the --redis-sentinel-* flags")
	}

	proxies, err := parseTrustedProxies(o.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", f.source("trusted-proxies"), err)
	}

	jwtCfg, jwtSecret, err := jwtKey(o, f, getenv)
	if err != nil {
		return nil, err
	}
	r.jwtSecret = jwtSecret
	r.apiKey, err = resolveSecret(f, o.APIKeyFile, "api-key-file", envAPIKey, getenv)
	if err != nil {
		return nil, err
	}
	if r.apiKey.value == "" && o.Dev {
		r.apiKey = secret{value: devAPIKey, source: "--dev default"}
	}

	stats := o.StatsInterval
	if stats == 0 {
		stats = -1 // node: <0 disables
	}
	drain := o.DrainPeriod
	if drain == 0 {
		drain = time.Nanosecond // node: 0 means the default; close all at once
	}
	r.cfg = node.Config{
		Addr:               o.Addr,
		AdminAddr:          o.AdminAddr,
		APIAddr:            o.APIAddr,
		APIURL:             o.AdvertiseAPIURL,
		PeerAPIHosts:       flaglist.Split(o.PeerAPIHosts),
		Namespace:          o.Namespace,
		NodeID:             o.NodeID,
		IO:                 io,
		TLSCert:            o.TLSCert,
		TLSKey:             o.TLSKey,
		Workers:            o.Workers,
		PingInterval:       o.PingInterval,
		PingTimeout:        o.PingTimeout,
		OutboundQueueBytes: o.OutboundQueueBytes,
		WriteDelay:         o.WriteDelay,
		TypingExpiry:       o.TypingExpiry,
		DrainPeriod:        drain,
		StatsInterval:      stats,
		JWT:                jwtCfg,
		APIKey:             r.apiKey.value,
		Dev:                o.Dev,
		Pprof:              o.Pprof,

		UpgradeTimeout:              o.UpgradeTimeout,
		MaxHeaderBytes:              o.MaxHeaderBytes,
		MaxPendingHandshakes:        o.MaxPendingHandshakes,
		MaxPendingHandshakesPerAddr: o.MaxPendingHandshakesPerAddr,
		TrustedProxies:              proxies,

		Limits: node.Limits{
			MaxUserConnections: o.MaxUserConnections,
			MaxConnections:     o.MaxConnections,
			Messages:           o.LimitMessages,
			Reactions:          o.LimitReactions,
			Typing:             o.LimitTyping,
			Joins:              o.LimitJoins,
			Connects:           o.LimitConnects,
			ContentChars:       o.MaxContent,
			MaxFrame:           o.MaxFrame,
			ChatsPerConn:       o.MaxChatsPerConnection,
			Window:             o.LimitWindow,
		},
	}
	r.cfg.ConsoleSocketOrigins = flaglist.Split(o.ConsoleSockets)
	return r, nil
}

// parseTrustedProxies reads a comma-separated list of CIDR prefixes; a bare
// address stands for itself (/32 or /128).
func parseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix or an IP address", s)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix or an IP address", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
