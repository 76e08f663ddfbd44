package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Gateway scenarios (issue 2): connecting, refusals, heartbeats, frame limits,
// namespaces, transports.

func TestConnectEmitAck(t *testing.T) {
	n := StartNode(t, "--dev")
	n.RunJS(t, "connect_ack.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

func TestConnectErrorCodes(t *testing.T) {
	const iss, aud = "e2e-issuer", "e2e-audience"
	n := StartNode(t, "--jwt-issuer", iss, "--jwt-audience", aud)
	good := func(c jwt.MapClaims) { c["iss"], c["aud"] = iss, aud }
	now := time.Now()
	type connectCase struct {
		Name  string  `json:"name"`
		Token *string `json:"token"`
		Code  string  `json:"code"`
	}
	str := func(s string) *string { return &s }
	cases := []connectCase{
		{"no token", nil, "AUTH_REQUIRED"},
		{"empty token", str(""), "AUTH_REQUIRED"},
		{"malformed", str("not-a-jwt"), "AUTH_INVALID"},
		{"bad signature", str(sign(t, jwt.SigningMethodHS256, []byte("another-secret"), jwt.MapClaims{"sub": "u1", "exp": now.Add(time.Hour).Unix(), "iss": iss, "aud": aud})), "AUTH_INVALID"},
		{"alg none", str(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "u1", "exp": now.Add(time.Hour).Unix(), "iss": iss, "aud": aud})), "AUTH_INVALID"},
		{"HS512 with the right secret", str(sign(t, jwt.SigningMethodHS512, []byte(jwtSecret), jwt.MapClaims{"sub": "u1", "exp": now.Add(time.Hour).Unix(), "iss": iss, "aud": aud})), "AUTH_INVALID"},
		{"missing sub", str(Token(t, "u1", good, func(c jwt.MapClaims) { delete(c, "sub") })), "AUTH_INVALID"},
		{"missing exp", str(Token(t, "u1", good, func(c jwt.MapClaims) { delete(c, "exp") })), "AUTH_INVALID"},
		{"wrong issuer", str(Token(t, "u1", good, func(c jwt.MapClaims) { c["iss"] = "someone-else" })), "AUTH_INVALID"},
		{"wrong audience", str(Token(t, "u1", good, func(c jwt.MapClaims) { c["aud"] = "someone-else" })), "AUTH_INVALID"},
		{"expired", str(Token(t, "u1", good, func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), "AUTH_EXPIRED"},
	}
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	n.RunJS(t, "connect_errors.mjs", map[string]string{
		"CASES":    string(b),
		"TOKEN_OK": Token(t, "dave", good),
	})
}

func TestTokenExpiresOnLiveConnection(t *testing.T) {
	n := StartNode(t, "--dev")
	n.RunJS(t, "auth_expiry.mjs", map[string]string{
		"TOKEN": Token(t, "erin", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(4 * time.Second).Unix() }),
	})
}

func TestClientSurvivesShortPingIntervals(t *testing.T) {
	// Short intervals; a pong timeout the client can meet on a loaded
	// machine under -race (with 300 ms the node dropped it now and then:
	// "transport close" after 3 pings).
	n := StartNode(t, "--dev", "--ping-interval", "300ms", "--ping-timeout", "1s")
	n.RunJS(t, "ping_alive.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

func TestSilentClientIsDropped(t *testing.T) {
	n := StartNode(t, "--dev", "--ping-interval", "300ms", "--ping-timeout", "300ms")
	n.RunJS(t, "ping_dropped.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

func TestOversizedFrameClosesConnection(t *testing.T) {
	n := StartNode(t, "--dev", "--max-frame", "4096", "--max-content", "100")
	n.RunJS(t, "oversize.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

func TestSecondNamespaceOnSameManager(t *testing.T) {
	n := StartNode(t, "--dev", "--max-user-connections", "1")
	n.RunJS(t, "namespaces.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

// TestPollingRefused: HTTP long-polling is not offered; the answer says how to
// configure the client.
func TestPollingRefused(t *testing.T) {
	n := StartNode(t)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, err := http.NewRequest(method, n.URL+"/socket.io/?EIO=4&transport=polling&t=abc", strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%s polling: %d %s %s", method, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s polling: status %d, want 400", method, resp.StatusCode)
		}
		if !strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s polling: content-type %q, want JSON", method, resp.Header.Get("Content-Type"))
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s polling: body is not JSON: %v", method, err)
		}
		if !strings.Contains(string(body), "transports") || !strings.Contains(string(body), "websocket") {
			t.Errorf("%s polling: body %s does not name transports: ['websocket']", method, body)
		}
	}
}

// TestAdminEndpoints: health, readiness and metrics on the admin port.
func TestAdminEndpoints(t *testing.T) {
	n := StartNode(t)
	for path, want := range map[string]string{
		"/healthz": "",
		"/readyz":  "",
		"/metrics": "# TYPE",
	} {
		resp, err := http.Get(n.AdminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %.200s", path, resp.StatusCode, body)
		}
	}
}

// upgrade sends a raw WebSocket upgrade for the Engine.IO endpoint and
// returns the status, and for a refusal its content type and body. An
// accepted connection stays open until the test ends.
func upgrade(t *testing.T, addr string) (code int, contentType, body string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the upgrade response: %v", err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		_ = c.SetDeadline(time.Time{}) // held open, idle, until the test ends
		return resp.StatusCode, "", ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("upgrade refused: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// checkRefusal asserts a refusal's JSON body { error: { code, message, retryAfterMs? } }.
func checkRefusal(t *testing.T, contentType, body, code string, retry bool) {
	t.Helper()
	if !strings.Contains(contentType, "application/json") {
		t.Errorf("refusal content-type %q, want application/json (PROTOCOL.md: a JSON body)", contentType)
	}
	var v struct {
		Error struct {
			Code         string   `json:"code"`
			Message      string   `json:"message"`
			RetryAfterMs *float64 `json:"retryAfterMs"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("refusal body is not JSON: %v: %s", err, body)
	}
	if v.Error.Code != code || v.Error.Message == "" {
		t.Errorf("refusal %s, want code %s with a message", body, code)
	}
	if retry && (v.Error.RetryAfterMs == nil || *v.Error.RetryAfterMs <= 0) {
		t.Errorf("refusal %s, want a positive retryAfterMs", body)
	}
}

// TestNodeFullAnswers503: past --max-connections an upgrade gets 503 NODE_FULL
// (socket.io-client then retries with backoff, possibly on another node).
func TestNodeFullAnswers503(t *testing.T) {
	n := StartNode(t, "--max-connections", "2")
	checkRefusedAfter(t, n, 2, http.StatusServiceUnavailable, "NODE_FULL", false)
}

// TestConnectAttemptsRateLimited: past --limit-connects attempts per address an
// upgrade gets 429 RATE_LIMITED with retryAfterMs.
func TestConnectAttemptsRateLimited(t *testing.T) {
	n := StartNode(t, "--limit-connects", "3")
	checkRefusedAfter(t, n, 3, http.StatusTooManyRequests, "RATE_LIMITED", true)
}

// checkRefusedAfter makes ok upgrades to n, which must succeed, and one more,
// which must be refused with status and the error code (and a retryAfterMs
// when retry).
func checkRefusedAfter(t *testing.T, n *Node, ok, status int, code string, retry bool) {
	t.Helper()
	for i := range ok {
		if got, _, body := upgrade(t, n.Addr); got != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade %d: %d %s, want 101", i+1, got, body)
		}
	}
	got, ct, body := upgrade(t, n.Addr)
	if got != status {
		t.Fatalf("upgrade %d: %d, want %d", ok+1, got, status)
	}
	checkRefusal(t, ct, body, code, retry)
}
