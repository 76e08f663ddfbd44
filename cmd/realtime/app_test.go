package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// env is a fake environment for the app.
type env map[string]string

func (e env) get(k string) (string, bool) { v, ok := e[k]; return v, ok }

// testApp returns an app writing to buffers, with a fixed clock and hostname.
func testApp(e env) (*app, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &app{
		stdout:   &out,
		stderr:   &errb,
		getenv:   e.get,
		hostname: func() (string, error) { return "host1", nil },
		now:      time.Now,
		exit:     func(code int) { panic("exit called") },
	}, &out, &errb
}

// resolveArgs parses serve flags and resolves them.
func resolveArgs(t *testing.T, e env, args ...string) (*serveOptions, *resolved, error) {
	t.Helper()
	var o serveOptions
	f := serveFlags(&o)
	if err := f.parse(args, e.get); err != nil {
		return &o, nil, err
	}
	r, err := resolve(&o, f, e.get, func() (string, error) { return "host1", nil })
	return &o, r, err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"addr":                     "REALTIME_ADDR",
		"max-chats-per-connection": "REALTIME_MAX_CHATS_PER_CONNECTION",
		"jwt-public-key-file":      "REALTIME_JWT_PUBLIC_KEY_FILE",
	} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFlagEnvResolution(t *testing.T) {
	secret := env{"REALTIME_JWT_SECRET": "s"}
	with := func(kv ...string) env {
		e := env{"REALTIME_JWT_SECRET": "s"}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}
	tests := []struct {
		name  string
		env   env
		args  []string
		check func(t *testing.T, o *serveOptions, r *resolved)
	}{
		{"defaults", secret, nil, func(t *testing.T, o *serveOptions, r *resolved) {
			if o.Addr != ":8080" || o.AdminAddr != "127.0.0.1:9090" || o.Namespace != "/messenger" {
				t.Errorf("addresses: %q %q %q", o.Addr, o.AdminAddr, o.Namespace)
			}
			if r.cfg.Limits.MaxConnections != 10000 || r.cfg.Limits.MaxUserConnections != 3 || r.cfg.Limits.Messages != 30 ||
				r.cfg.Limits.Reactions != 60 || r.cfg.Limits.Typing != 120 || r.cfg.Limits.Joins != 120 || r.cfg.Limits.Connects != 60 ||
				r.cfg.Limits.Window != time.Minute || r.cfg.Limits.ContentChars != 4000 || r.cfg.Limits.MaxFrame != 65536 ||
				r.cfg.Limits.ChatsPerConn != 200 {
				t.Errorf("limits: %+v", r.cfg.Limits)
			}
			if r.cfg.PingInterval != 25*time.Second || r.cfg.PingTimeout != 20*time.Second || r.cfg.DrainPeriod != 20*time.Second ||
				r.cfg.TypingExpiry != 6*time.Second || r.cfg.StatsInterval != 10*time.Second || r.cfg.OutboundQueueBytes != 1<<20 {
				t.Errorf("timings: %+v", r.cfg)
			}
			if r.cfg.IO != "epoll" || r.cfg.Dev || r.logFormat != "json" || r.cfg.JWT.Alg != "HS256" {
				t.Errorf("io %q dev %v log %q alg %q", r.cfg.IO, r.cfg.Dev, r.logFormat, r.cfg.JWT.Alg)
			}
			if !regexp.MustCompile(`^host1-[0-9a-f]{6}$`).MatchString(r.cfg.NodeID) {
				t.Errorf("node id %q, want host1-<6 hex>", r.cfg.NodeID)
			}
		}},
		{"env fills a flag", with("REALTIME_ADDR", ":7000", "REALTIME_MAX_CHATS_PER_CONNECTION", "5", "REALTIME_PING_INTERVAL", "300ms", "REALTIME_DEV", "true"), nil,
			func(t *testing.T, o *serveOptions, r *resolved) {
				if o.Addr != ":7000" || r.cfg.Limits.ChatsPerConn != 5 || r.cfg.PingInterval != 300*time.Millisecond || !r.cfg.Dev {
					t.Errorf("got addr %q chats %d ping %v dev %v", o.Addr, r.cfg.Limits.ChatsPerConn, r.cfg.PingInterval, r.cfg.Dev)
				}
			}},
		{"flag wins over env", with("REALTIME_ADDR", ":7000", "REALTIME_LIMIT_MESSAGES", "9"), []string{"--addr", ":7001", "-limit-messages=4"},
			func(t *testing.T, o *serveOptions, r *resolved) {
				if o.Addr != ":7001" || r.cfg.Limits.Messages != 4 {
					t.Errorf("got %q %d", o.Addr, r.cfg.Limits.Messages)
				}
			}},
		{"empty env is unset", with("REALTIME_NAMESPACE", ""), nil, func(t *testing.T, o *serveOptions, r *resolved) {
			if r.cfg.Namespace != "/messenger" {
				t.Errorf("namespace %q", r.cfg.Namespace)
			}
		}},
		{"node id given", secret, []string{"--node-id", "n1"}, func(t *testing.T, o *serveOptions, r *resolved) {
			if r.cfg.NodeID != "n1" {
				t.Errorf("node id %q", r.cfg.NodeID)
			}
		}},
		{"stats interval 0 disables", secret, []string{"--stats-interval", "0"}, func(t *testing.T, o *serveOptions, r *resolved) {
			if r.cfg.StatsInterval >= 0 {
				t.Errorf("stats interval %v, want negative (disabled)", r.cfg.StatsInterval)
			}
		}},
		{"tls switches to goroutine reader", secret, []string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, func(t *testing.T, o *serveOptions, r *resolved) {
			if r.cfg.IO != "goroutine" {
				t.Errorf("io %q", r.cfg.IO)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, r, err := resolveArgs(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o, r)
		})
	}
}

func TestFlagErrorsNameTheirSource(t *testing.T) {
	tests := []struct {
		name string
		env  env
		args []string
		want string
	}{
		{"bad env int", env{"REALTIME_JWT_SECRET": "s", "REALTIME_MAX_FRAME": "big"}, nil, "REALTIME_MAX_FRAME"},
		{"bad env duration", env{"REALTIME_JWT_SECRET": "s", "REALTIME_PING_TIMEOUT": "5"}, nil, "REALTIME_PING_TIMEOUT"},
		{"bad flag", env{"REALTIME_JWT_SECRET": "s"}, []string{"--max-frame", "x"}, "max-frame"},
		{"unknown flag", env{"REALTIME_JWT_SECRET": "s"}, []string{"--nope"}, "nope"},
		{"stray argument", env{"REALTIME_JWT_SECRET": "s"}, []string{"extra"}, `"extra"`},
		{"no secret", env{}, nil, "REALTIME_JWT_SECRET"},
		{"bad alg from env", env{"REALTIME_JWT_SECRET": "s", "REALTIME_JWT_ALG": "HS512"}, nil, "REALTIME_JWT_ALG"},
		{"bad io", env{"REALTIME_JWT_SECRET": "s"}, []string{"--io", "uring"}, "--io"},
		{"bad log format", env{"REALTIME_JWT_SECRET": "s"}, []string{"--log-format", "xml"}, "--log-format"},
		{"bad log level", env{"REALTIME_JWT_SECRET": "s"}, []string{"--log-level", "loud"}, "--log-level"},
		{"zero limit", env{"REALTIME_JWT_SECRET": "s", "REALTIME_LIMIT_MESSAGES": "0"}, nil, "REALTIME_LIMIT_MESSAGES"},
		{"negative ping", env{"REALTIME_JWT_SECRET": "s"}, []string{"--ping-interval", "-1s"}, "--ping-interval"},
		{"half tls", env{"REALTIME_JWT_SECRET": "s"}, []string{"--tls-cert", "c"}, "--tls-key"},
		{"epoll with tls", env{"REALTIME_JWT_SECRET": "s"}, []string{"--tls-cert", "c", "--tls-key", "k", "--io", "epoll"}, "--io"},
		{"namespace", env{"REALTIME_JWT_SECRET": "s"}, []string{"--namespace", "messenger"}, "--namespace"},
		{"half sentinel", env{"REALTIME_JWT_SECRET": "s"}, []string{"--redis-sentinel-master", "m"}, "--redis-sentinel-addrs"},
		{"cluster and url", env{"REALTIME_JWT_SECRET": "s"}, []string{"--redis-cluster-addrs", "a:1", "--redis-url", "redis://b:1"}, "--redis-cluster-addrs"},
		{"cluster and sentinel", env{"REALTIME_JWT_SECRET": "s", "REALTIME_REDIS_CLUSTER_ADDRS": "a:1"}, []string{"--redis-sentinel-master", "m", "--redis-sentinel-addrs", "s:1"}, "--redis-cluster-addrs"},
		{"tls with url", env{"REALTIME_JWT_SECRET": "s"}, []string{"--redis-tls", "--redis-url", "redis://b:1"}, "rediss://"},
		{"tls alone", env{"REALTIME_JWT_SECRET": "s"}, []string{"--redis-tls"}, "--redis-cluster-addrs"},
		{"advertise api url without scheme", env{"REALTIME_JWT_SECRET": "s"}, []string{"--advertise-api-url", "node1:9091"}, "--advertise-api-url"},
		{"advertise api url not http", env{"REALTIME_JWT_SECRET": "s", "REALTIME_ADVERTISE_API_URL": "ftp://node1:9091"}, nil, "REALTIME_ADVERTISE_API_URL"},
		{"zero partitions", env{"REALTIME_JWT_SECRET": "s", "REALTIME_REDIS_CLUSTER_PARTITIONS": "0"}, nil, "REALTIME_REDIS_CLUSTER_PARTITIONS"},
		{"public key with HS256", env{"REALTIME_JWT_SECRET": "s"}, []string{"--jwt-public-key-file", "k.pem"}, "--jwt-public-key-file"},
		{"RS256 without key", env{}, []string{"--jwt-alg", "RS256"}, "--jwt-public-key-file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := resolveArgs(t, tc.env, tc.args...)
			if err == nil {
				t.Fatalf("no error, want one naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

func TestServeConfigErrorExitsTwoWithOneLine(t *testing.T) {
	a, out, errb := testApp(env{})
	code := a.Run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"})
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	msg := errb.String()
	if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "REALTIME_JWT_SECRET") || !strings.Contains(msg, "--jwt-secret-file") {
		t.Errorf("stderr %q: want one line naming REALTIME_JWT_SECRET and --jwt-secret-file", msg)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q, want nothing", out)
	}
}

func TestSecrets(t *testing.T) {
	secretFile := writeFile(t, "jwt", "file-secret\n")
	keyFile := writeFile(t, "api", "file-key\r\n")
	empty := writeFile(t, "empty", "\n")

	for name, tc := range map[string]struct {
		env                 env
		args                []string
		wantSecret, wantKey string
	}{
		"files, trailing newline trimmed": {env{}, []string{"--jwt-secret-file", secretFile, "--api-key-file", keyFile}, "file-secret", "file-key"},
		"file flags from env":             {env{"REALTIME_JWT_SECRET_FILE": secretFile, "REALTIME_API_KEY_FILE": keyFile}, nil, "file-secret", "file-key"},
		"env":                             {env{"REALTIME_JWT_SECRET": "env-secret", "REALTIME_API_KEY": "env-key"}, nil, "env-secret", "env-key"},
		"no API key outside dev disables the API": {env{"REALTIME_JWT_SECRET": "s"}, nil, "s", ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, r, err := resolveArgs(t, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.cfg.JWT.Secret) != tc.wantSecret || r.cfg.APIKey != tc.wantKey {
				t.Errorf("secret %q key %q, want %q %q", r.cfg.JWT.Secret, r.cfg.APIKey, tc.wantSecret, tc.wantKey)
			}
		})
	}
	for name, tc := range map[string]struct {
		env  env
		args []string
		want string
	}{
		"both file and env":   {env{"REALTIME_JWT_SECRET": "x"}, []string{"--jwt-secret-file", secretFile}, "use one"},
		"missing file":        {env{}, []string{"--jwt-secret-file", filepath.Join(t.TempDir(), "nope")}, "--jwt-secret-file"},
		"empty file":          {env{}, []string{"--jwt-secret-file", empty}, "empty"},
		"api key both":        {env{"REALTIME_JWT_SECRET": "x", "REALTIME_API_KEY": "k"}, []string{"--api-key-file", keyFile}, "use one"},
		"api key file in env": {env{"REALTIME_JWT_SECRET": "x", "REALTIME_API_KEY_FILE": empty}, nil, "REALTIME_API_KEY_FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := resolveArgs(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDevMode(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		_, r, err := resolveArgs(t, env{}, "--dev")
		if err != nil {
			t.Fatal(err)
		}
		if string(r.cfg.JWT.Secret) != "dev-secret" || r.cfg.APIKey != "dev-api-key" || !r.cfg.Dev || r.logFormat != "console" {
			t.Errorf("secret %q key %q dev %v format %q", r.cfg.JWT.Secret, r.cfg.APIKey, r.cfg.Dev, r.logFormat)
		}
	})
	t.Run("given secrets and log format win", func(t *testing.T) {
		_, r, err := resolveArgs(t, env{"REALTIME_JWT_SECRET": "mine", "REALTIME_API_KEY": "my-key", "REALTIME_LOG_FORMAT": "json"}, "--dev")
		if err != nil {
			t.Fatal(err)
		}
		if string(r.cfg.JWT.Secret) != "mine" || r.cfg.APIKey != "my-key" || r.logFormat != "json" {
			t.Errorf("secret %q key %q format %q", r.cfg.JWT.Secret, r.cfg.APIKey, r.logFormat)
		}
	})
}

func pemFile(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
}

func TestPublicKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaPEM, p256PEM, p384PEM := pemFile(t, &rsaKey.PublicKey), pemFile(t, &p256.PublicKey), pemFile(t, &p384.PublicKey)

	t.Run("RS256", func(t *testing.T) {
		_, r, err := resolveArgs(t, env{}, "--jwt-alg", "RS256", "--jwt-public-key-file", rsaPEM)
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := r.cfg.JWT.PublicKey.(*rsa.PublicKey); !ok || !k.Equal(&rsaKey.PublicKey) {
			t.Errorf("key %T, want the *rsa.PublicKey", r.cfg.JWT.PublicKey)
		}
		if r.cfg.JWT.Secret != nil {
			t.Error("secret set for RS256")
		}
	})
	t.Run("ES256", func(t *testing.T) {
		_, r, err := resolveArgs(t, env{"REALTIME_JWT_ALG": "ES256", "REALTIME_JWT_PUBLIC_KEY_FILE": p256PEM})
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := r.cfg.JWT.PublicKey.(*ecdsa.PublicKey); !ok || !k.Equal(&p256.PublicKey) {
			t.Errorf("key %T, want the *ecdsa.PublicKey", r.cfg.JWT.PublicKey)
		}
	})
	for name, args := range map[string][]string{
		"EC key for RS256":  {"--jwt-alg", "RS256", "--jwt-public-key-file", p256PEM},
		"RSA key for ES256": {"--jwt-alg", "ES256", "--jwt-public-key-file", rsaPEM},
		"P-384 for ES256":   {"--jwt-alg", "ES256", "--jwt-public-key-file", p384PEM},
		"secret file":       {"--jwt-alg", "ES256", "--jwt-public-key-file", p256PEM, "--jwt-secret-file", rsaPEM},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := resolveArgs(t, env{}, args...)
			if err == nil || !strings.Contains(err.Error(), "--jwt-") {
				t.Errorf("error %v, want a refusal naming the flag", err)
			}
		})
	}
}

// verify parses tok the way the node must: pinned algorithm, exp required.
func verify(t *testing.T, tok, secret string, opts ...jwt.ParserOption) (*tokenClaims, error) {
	t.Helper()
	var c tokenClaims
	opts = append(opts, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	_, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return []byte(secret), nil }, opts...)
	return &c, err
}

func TestTokenCommand(t *testing.T) {
	a, out, errb := testApp(env{"REALTIME_JWT_SECRET": "s3cret", "REALTIME_JWT_ISSUER": "iss1"})
	before := time.Now().Truncate(time.Second)
	code := a.Run(context.Background(), []string{"token", "--user", "alice", "--profiles", "p1, p2,", "--name", "Alice A", "--ttl", "2h", "--jwt-audience", "aud1"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(out.String(), "\n") != 1 {
		t.Errorf("output %q, want one line", out)
	}
	c, err := verify(t, tok, "s3cret", jwt.WithIssuer("iss1"), jwt.WithAudience("aud1"))
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if c.Subject != "alice" || c.Name != "Alice A" || strings.Join(c.Profiles, ",") != "p1,p2" {
		t.Errorf("claims %+v", c)
	}
	if c.IssuedAt == nil || c.IssuedAt.Before(before) || c.ExpiresAt.Sub(c.IssuedAt.Time) != 2*time.Hour {
		t.Errorf("iat %v exp %v, want exp = iat + 2h", c.IssuedAt, c.ExpiresAt)
	}
	if _, err := verify(t, tok, "other"); err == nil {
		t.Error("token verifies with another secret")
	}
	// The header says HS256 and nothing else signs it.
	parts := strings.Split(tok, ".")
	hdr, _ := jwt.NewParser().DecodeSegment(parts[0])
	var h map[string]any
	_ = json.Unmarshal(hdr, &h)
	if h["alg"] != "HS256" {
		t.Errorf("header %v", h)
	}
}

func TestTokenCommandMinimalAndDev(t *testing.T) {
	a, out, errb := testApp(env{})
	if code := a.Run(context.Background(), []string{"token", "--dev", "--user", "bob"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	c, err := verify(t, strings.TrimSpace(out.String()), "dev-secret")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "bob" || c.Profiles != nil || c.Name != "" || c.Issuer != "" || len(c.Audience) != 0 {
		t.Errorf("claims %+v", c)
	}
	if d := c.ExpiresAt.Sub(c.IssuedAt.Time); d != time.Hour {
		t.Errorf("ttl %v, want the 1h default", d)
	}
	// The raw payload has no empty optional claims.
	payload, _ := jwt.NewParser().DecodeSegment(strings.Split(strings.TrimSpace(out.String()), ".")[1])
	var m map[string]any
	_ = json.Unmarshal(payload, &m)
	for _, k := range []string{"profiles", "name", "iss", "aud"} {
		if _, ok := m[k]; ok {
			t.Errorf("payload has %q: %s", k, payload)
		}
	}
}

func TestTokenCommandSecretFromFile(t *testing.T) {
	a, out, _ := testApp(env{"REALTIME_JWT_SECRET_FILE": writeFile(t, "s", "from-file\n")})
	if code := a.Run(context.Background(), []string{"token", "--user", "carol", "--ttl", "90s"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if _, err := verify(t, strings.TrimSpace(out.String()), "from-file"); err != nil {
		t.Fatal(err)
	}
}

func TestTokenCommandErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		env  env
		args []string
		want string
	}{
		"no user":   {env{"REALTIME_JWT_SECRET": "s"}, nil, "--user"},
		"no secret": {env{}, []string{"--user", "a"}, "REALTIME_JWT_SECRET"},
		"bad ttl":   {env{"REALTIME_JWT_SECRET": "s"}, []string{"--user", "a", "--ttl", "-1h"}, "ttl"},
		"bad env":   {env{"REALTIME_JWT_SECRET": "s", "REALTIME_TTL": "soon"}, []string{"--user", "a"}, "REALTIME_TTL"},
	} {
		t.Run(name, func(t *testing.T) {
			a, out, errb := testApp(tc.env)
			if code := a.Run(context.Background(), append([]string{"token"}, tc.args...)); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if out.Len() != 0 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stdout %q stderr %q, want an error naming %s", out, errb, tc.want)
			}
		})
	}
}

func TestServeHelpListsEveryFlag(t *testing.T) {
	a, out, _ := testApp(env{})
	if code := a.Run(context.Background(), []string{"serve", "--help"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := out.String()
	f := serveFlags(&serveOptions{})
	n := 0
	f.fs.VisitAll(func(fl *flag.Flag) {
		n++
		if !strings.Contains(help, "--"+fl.Name+" ") && !strings.Contains(help, "--"+fl.Name+"\n") {
			t.Errorf("help lacks --%s", fl.Name)
		}
		if !strings.Contains(help, envName(fl.Name)) {
			t.Errorf("help lacks %s", envName(fl.Name))
		}
	})
	if n != len(f.opts) {
		t.Errorf("%d flags defined, %d documented", n, len(f.opts))
	}
	for _, want := range []string{"default :8080", "default 25s", "default 1m,", "default 24h,", "default 65536"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	// Every flag the brief names exists.
	for _, name := range strings.Fields(`addr admin-addr namespace node-id max-connections max-user-connections jwt-alg
		jwt-secret-file jwt-public-key-file jwt-issuer jwt-audience api-key-file log-level log-format dev tls-cert tls-key
		io workers ping-interval ping-timeout max-frame outbound-queue-bytes drain-period stats-interval typing-expiry
		limit-messages limit-reactions limit-typing limit-joins limit-connects limit-window max-content
		max-chats-per-connection history-size history-ttl redis-url redis-prefix redis-sentinel-master
		redis-sentinel-addrs redis-cluster-addrs redis-tls rtm-url rtm-lease-ttl`) {
		if f.fs.Lookup(name) == nil {
			t.Errorf("serve has no --%s", name)
		}
	}
}

func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"version"}, 0, runtime.Version(), ""},
		{[]string{"help"}, 0, "realtime serve", ""},
		{[]string{"help", "serve"}, 0, "REALTIME_REDIS_URL", ""},
		{[]string{"help", "token"}, 0, "--profiles", ""},
		{[]string{"token", "-h"}, 0, "--ttl", ""},
		{nil, exitUsage, "", "Usage"},
		{[]string{"bogus"}, exitUsage, "", `unknown command "bogus"`},
	} {
		a, out, errb := testApp(env{})
		code := a.Run(context.Background(), tc.args)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%v: exit %d stdout %q stderr %q; want exit %d, stdout with %q, stderr with %q",
				tc.args, code, out, errb, tc.code, tc.out, tc.err)
		}
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", "info", "n1")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("hidden")
	log.Info().Msg("hello")
	log.Error().Msg("bad")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines %q", lines)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["node"] != "n1" || m["level"] != "info" || m["message"] != "hello" {
		t.Errorf("line %v", m)
	}
	ts, _ := m["time"].(string)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("time %q, want RFC 3339 UTC with milliseconds", ts)
	}
}

func TestLoopbackHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:8080":      "127.0.0.1:8080",
		"0.0.0.0:1":      "127.0.0.1:1",
		"127.0.0.2:9000": "127.0.0.2:9000",
	} {
		a, _ := net.ResolveTCPAddr("tcp", in)
		if got := loopbackHostPort(a); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestDevSnippet(t *testing.T) {
	_, r, err := resolveArgs(t, env{}, "--dev")
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := testApp(env{})
	var buf bytes.Buffer
	addr, _ := net.ResolveTCPAddr("tcp", "[::]:8123")
	admin, _ := net.ResolveTCPAddr("tcp", "127.0.0.1:9123")
	a.printDevSnippet(&buf, r, addr, admin, "/messenger")
	s := buf.String()
	m := regexp.MustCompile(`const socket = io\('http://127\.0\.0\.1:8123/messenger', \{ transports: \['websocket'\], auth: \{ token: '([^']+)' \} \}\);`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("snippet lacks the io() line:\n%s", s)
	}
	c, err := verify(t, m[1], "dev-secret")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.ExpiresAt.Sub(c.IssuedAt.Time) != 24*time.Hour {
		t.Errorf("claims %+v", c)
	}
	if !strings.Contains(s, "curl") || !strings.Contains(s, "Authorization: Bearer dev-api-key") || !strings.Contains(s, "http://127.0.0.1:9123/api/") {
		t.Errorf("snippet lacks the curl line:\n%s", s)
	}
	// The command to mint more tokens is the one the developer ran.
	for exe, want := range map[string]string{
		"/tmp/go-build2712/b001/exe/realtime": "`go run ./cmd/realtime token --dev --user bob`",
		"/usr/local/bin/realtime":             "`realtime token --dev --user bob`",
	} {
		a.executable = func() (string, error) { return exe, nil }
		buf.Reset()
		a.printDevSnippet(&buf, r, addr, admin, "/messenger")
		if !strings.Contains(buf.String(), want) {
			t.Errorf("run as %s: the banner lacks %s:\n%s", exe, want, buf.String())
		}
	}
	a.executable = nil

	// An operator's own secrets are not printed.
	_, r, err = resolveArgs(t, env{"REALTIME_JWT_SECRET": "top-secret", "REALTIME_API_KEY": "my-api-key"}, "--dev")
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	a.printDevSnippet(&buf, r, addr, admin, "/messenger")
	if strings.Contains(buf.String(), "top-secret") || strings.Contains(buf.String(), "my-api-key") {
		t.Errorf("snippet prints a given secret:\n%s", buf.String())
	}
}
