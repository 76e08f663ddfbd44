package adminui

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestSocketIOBundleMatchesNPM: the embedded socket.io-client bundle is the
// one of the version e2e/package.json pins, byte for byte (update it with
// cp e2e/node_modules/socket.io-client/dist/socket.io.min.js adminui/static/).
func TestSocketIOBundleMatchesNPM(t *testing.T) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile("../e2e/package.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	pinned := pkg.Dependencies["socket.io-client"]
	installed, err := os.ReadFile("../e2e/node_modules/socket.io-client/package.json")
	if err != nil {
		if testing.Short() {
			t.Skip("e2e/node_modules is not installed (make deps)")
		}
		t.Fatalf("e2e/node_modules is not installed (run make deps): %v", err)
	}
	var inst struct{ Version string }
	if err := json.Unmarshal(installed, &inst); err != nil {
		t.Fatal(err)
	}
	if inst.Version != pinned {
		t.Fatalf("installed socket.io-client %s, e2e/package.json pins %s: run npm ci in e2e", inst.Version, pinned)
	}
	want, err := os.ReadFile("../e2e/node_modules/socket.io-client/dist/socket.io.min.js")
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(static, "static/socket.io.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("adminui/static/socket.io.min.js differs from socket.io-client %s's dist/socket.io.min.js: copy it again", pinned)
	}
	if !bytes.Contains(got, []byte("Socket.IO v"+pinned)) {
		t.Fatalf("the bundle does not name version %s", pinned)
	}
}

// TestHandlerHeaders: every file goes out with the strict policy, and the
// page loads nothing from elsewhere and has no inline script or style.
func TestHandlerHeaders(t *testing.T) {
	srv := httptest.NewServer(Handler("/admin/", func(*http.Request) []string { return []string{"ws://127.0.0.1:8080"} }))
	defer srv.Close()
	for _, path := range []string{"/admin/", "/admin/app.js", "/admin/style.css", "/admin/socket.io.min.js"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != Policy("ws://127.0.0.1:8080") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	html, _ := fs.ReadFile(static, "static/index.html")
	for _, bad := range []string{"<script>", "style=", "http://", "https://", " on"} {
		if bad == " on" {
			// inline handlers: onclick=, onload=, ...
			for _, attr := range []string{" onclick=", " onload=", " onsubmit=", " onerror="} {
				if strings.Contains(string(html), attr) {
					t.Errorf("index.html has an inline handler %q", attr)
				}
			}
			continue
		}
		if strings.Contains(string(html), bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	js, _ := fs.ReadFile(static, "static/app.js")
	if strings.Contains(string(js), "innerHTML") || strings.Contains(string(js), "insertAdjacentHTML") {
		t.Error("app.js writes HTML: use textContent")
	}
}

// connectSrc returns the sources of policy's connect-src directive.
func connectSrc(t *testing.T, policy string) []string {
	t.Helper()
	for d := range strings.SplitSeq(policy, ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == "connect-src" {
			return f[1:]
		}
	}
	t.Fatalf("no connect-src in %q", policy)
	return nil
}

// TestPolicyConnectSrc: the page may connect to its own origin and to the
// sockets given, nothing else: no scheme-wide ws: or wss: source, no
// wildcard, and no value that adds a source or a directive.
func TestPolicyConnectSrc(t *testing.T) {
	for _, tc := range []struct {
		sockets []string
		want    []string
	}{
		{nil, []string{"'self'"}},
		{[]string{"ws://127.0.0.1:8080"}, []string{"'self'", "ws://127.0.0.1:8080"}},
		{[]string{"wss://10.0.0.1:8443", "wss://chat.example.com"}, []string{"'self'", "wss://10.0.0.1:8443", "wss://chat.example.com"}},
		// No CSP form for these: browsers would drop the source.
		{[]string{"wss://[::1]:8443", "ws://my_lb:8080"}, []string{"'self'"}},
		{[]string{"ws:", "wss:", "*", "ws://*:8080", "ws://*.example.com", "http://127.0.0.1:8080", "ws://127.0.0.1:8080/x",
			"ws://a:1 https://evil.example", "ws://a:1; script-src *", "ws://a\r\nX-Injected: 1", "ws://[::1", "'unsafe-inline'"},
			[]string{"'self'"}},
	} {
		policy := Policy(tc.sockets...)
		if got := connectSrc(t, policy); !slices.Equal(got, tc.want) {
			t.Errorf("Policy(%q): connect-src %q, want %q", tc.sockets, got, tc.want)
		}
		if n := strings.Count(policy, ";"); n != strings.Count(Policy(), ";") {
			t.Errorf("Policy(%q) has %d directives: %q", tc.sockets, n+1, policy)
		}
	}
}
