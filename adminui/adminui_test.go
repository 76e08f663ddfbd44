package adminui

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
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
	srv := httptest.NewServer(Handler("/admin/"))
	defer srv.Close()
	for _, path := range []string{"/admin/", "/admin/app.js", "/admin/style.css", "/admin/socket.io.min.js"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != ContentSecurityPolicy ||
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
