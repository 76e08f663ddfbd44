package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/internal/leakcheck"
	"github.com/anchat/realtime/internal/syncbuf"
)

// TestGoroutineReader runs the same client exchange through --io goroutine.
func TestGoroutineReader(t *testing.T) {
	leakcheck.Check(t)
	n := startNode(t, func(c *Config) { c.IO = IOGoroutine })
	a := connect(t, n.Addr().String(), token(t, "a", time.Hour, nil))
	b := connect(t, n.Addr().String(), token(t, "b", time.Hour, nil))
	for _, c := range []*testClient{a, b} {
		c.emit("join_chat", map[string]string{"chatId": "g"}, true)
	}
	var sent struct {
		OK        bool   `json:"ok"`
		MessageID string `json:"messageId"`
	}
	mustJSON(t, a.emit("send_message", map[string]any{"chatId": "g", "content": "hi", "messageType": "TEXT", "tempId": "t"}, true), &sent)
	if !sent.OK {
		t.Fatal("send refused")
	}
	var got struct{ MessageID, TempID string }
	mustJSON(t, b.waitEvent("new_message", 5*time.Second).data, &got)
	if got.MessageID != sent.MessageID || got.TempID != "t" {
		t.Fatalf("new_message %+v, sent %+v", got, sent)
	}
}

// selfSigned writes a throwaway certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestTLS serves wss through the goroutine reader.
func TestTLS(t *testing.T) {
	leakcheck.Check(t)
	cert, key := selfSigned(t)
	n := startNode(t, func(c *Config) { c.TLSCert, c.TLSKey = cert, key })
	if n.cfg.IO != IOGoroutine {
		t.Fatalf("TLS must select the goroutine reader, got %q", n.cfg.IO)
	}
	d := ws.Dialer{Timeout: 5 * time.Second, TLSConfig: &tls.Config{InsecureSkipVerify: true}}
	nc, br, _, err := d.Dial(context.Background(), "wss://"+n.Addr().String()+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &testClient{t: t, nc: nc, br: br, nsp: "/messenger"}
	if c.br == nil {
		c.br = bufioReader(nc)
	}
	if msg, err := wsutilReadText(c); err != nil || !strings.HasPrefix(msg, "0{") {
		t.Fatalf("open over TLS: %q %v", msg, err)
	}
	c.write(`40/messenger,{"token":"` + token(t, "tls", time.Hour, nil) + `"}`)
	if msg, err := wsutilReadText(c); err != nil || !strings.HasPrefix(msg, `40/messenger,{"sid"`) {
		t.Fatalf("connect over TLS: %q %v", msg, err)
	}
	if _, err := New(Config{NodeID: "x", TLSCert: cert, TLSKey: key, IO: IOEpoll, JWT: JWTConfig{Secret: []byte("s")}, Engines: memoryEngines()}); err == nil {
		t.Fatal("epoll with TLS must be refused")
	}
}

// TestStatsLineAndMetrics checks the periodic stats line and the Prometheus
// figures after some traffic.
func TestStatsLineAndMetrics(t *testing.T) {
	var logs syncbuf.Buffer
	n := startNode(t, func(c *Config) {
		c.StatsInterval = 100 * time.Millisecond
		// As cmd/realtime builds it: every line carries the node's id.
		c.Logger = zerolog.New(&logs).Level(zerolog.InfoLevel).With().Str("node", "stats-node").Logger()
		c.Limits.Messages = 2
	})
	a := connect(t, n.Addr().String(), token(t, "m", time.Hour, nil))
	a.emit("join_chat", map[string]string{"chatId": "s"}, true)
	for i := range 3 { // the third is rate limited
		a.emit("send_message", map[string]any{"chatId": "s", "content": "x", "messageType": "TEXT", "tempId": string(rune('a' + i))}, true)
	}
	deadline := time.Now().Add(5 * time.Second)
	var stats map[string]any
	for stats == nil && time.Now().Before(deadline) {
		for _, l := range logs.Lines() {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "stats" && m["connections"] == 1.0 && m["rate_limited"] != 0.0 {
				stats = m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stats == nil {
		t.Fatalf("no stats line with the traffic; logs:\n%s", strings.Join(logs.Lines(), "\n"))
	}
	for _, k := range []string{"users", "chats", "messages_in_per_min", "messages_out_per_min", "slow_consumers"} {
		if _, ok := stats[k]; !ok {
			t.Errorf("stats line lacks %q: %v", k, stats)
		}
	}
	// The stats line is written through the node's logger, so it names the node.
	if stats["node"] != "stats-node" {
		t.Errorf("stats line's node = %v, want stats-node: %v", stats["node"], stats)
	}
	connected := false
	for _, l := range logs.Lines() {
		if strings.Contains(l, `"message":"connected"`) && strings.Contains(l, `"user":"m"`) && strings.Contains(l, `"conn"`) && strings.Contains(l, `"remote"`) {
			connected = true
		}
	}
	if !connected {
		t.Error("no connect line with user, conn and remote")
	}

	resp, err := http.Get("http://" + n.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"realtime_connections 1",
		`realtime_events_in_total{event="send_message"} 3`,
		`realtime_rate_limited_total{action="send_message"} 1`,
		`realtime_events_out_total{event="new_message"} 2`,
		"realtime_outbound_queue_bytes",
		"realtime_slow_consumer_disconnects_total 0",
		"realtime_goroutines",
		"realtime_local_chats 1",
		"realtime_local_users 1",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestWriteDelayCoalesces delivers through the delayed flusher: every event
// arrives, in order, and frames queued within the delay share writes.
func TestWriteDelayCoalesces(t *testing.T) {
	n := startNode(t, func(c *Config) {
		c.WriteDelay = 20 * time.Millisecond
		c.Limits.Messages = 1000
	})
	a := connect(t, n.Addr().String(), token(t, "wa", time.Hour, nil))
	b := connect(t, n.Addr().String(), token(t, "wb", time.Hour, nil))
	for _, c := range []*testClient{a, b} {
		c.emit("join_chat", map[string]string{"chatId": "wd"}, true)
	}
	// Let the joins' own writes finish: frames queued while a write is in
	// progress join it without a delay, by design.
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	for i := range 20 {
		msg := newMessage{ChatID: "wd", SenderID: "s", Content: itoa(i), MessageType: "TEXT", CreatedAt: timestamp(time.Now())}
		if _, err := n.srv.appendMessage(msg, "s"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		var m struct{ Content string }
		mustJSON(t, b.waitEvent("new_message", 5*time.Second).data, &m)
		if m.Content != itoa(i) {
			t.Fatalf("message %d has content %q", i, m.Content)
		}
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Fatalf("delivered in %v, before the write delay", took)
	}
}
