package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Gateway scenarios (issue 2): connecting, refusals, heartbeats, frame limits,
// namespaces, transports.

func TestConnectEmitAck(t *testing.T) {
	t.Parallel()
	n := StartNode(t, "--dev")
	n.RunJS(t, "connect_ack.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

func TestConnectErrorCodes(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	n := StartNode(t, "--dev")
	n.RunJS(t, "auth_expiry.mjs", map[string]string{
		"TOKEN": Token(t, "erin", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(2 * time.Second).Unix() }),
	})
}

func TestClientSurvivesShortPingIntervals(t *testing.T) {
	t.Parallel()
	n := StartNode(t, "--dev", "--ping-interval", "300ms", "--ping-timeout", "300ms")
	n.RunJS(t, "ping_alive.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

func TestSilentClientIsDropped(t *testing.T) {
	t.Parallel()
	n := StartNode(t, "--dev", "--ping-interval", "300ms", "--ping-timeout", "300ms")
	n.RunJS(t, "ping_dropped.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

func TestOversizedFrameClosesConnection(t *testing.T) {
	t.Parallel()
	n := StartNode(t, "--dev", "--max-frame", "4096", "--max-content", "100")
	n.RunJS(t, "oversize.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

func TestSecondNamespaceOnSameManager(t *testing.T) {
	t.Parallel()
	n := StartNode(t, "--dev", "--max-user-connections", "1")
	n.RunJS(t, "namespaces.mjs", map[string]string{"TOKEN": Token(t, "alice")})
}

// TestPollingRefused: HTTP long-polling is not offered; the answer says how to
// configure the client.
func TestPollingRefused(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
