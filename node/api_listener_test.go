package node

import (
	"net/http"
	"testing"
)

func getStatus(t *testing.T, url string, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAPIOnItsOwnListener: with APIAddr the server API answers there and
// only there; health and metrics stay on the admin listener. Without it
// both share the admin listener.
func TestAPIOnItsOwnListener(t *testing.T) {
	n := startNode(t, func(c *Config) { c.APIAddr = "127.0.0.1:0" })
	admin, api := "http://"+n.AdminAddr().String(), "http://"+n.APIAddr().String()
	if admin == api {
		t.Fatalf("API on the admin address %s", admin)
	}
	for _, tc := range []struct {
		url  string
		want int
	}{
		{api + "/api/stats", http.StatusOK},
		{admin + "/api/stats", http.StatusNotFound},
		{api + "/metrics", http.StatusNotFound},
		{api + "/healthz", http.StatusNotFound},
		{admin + "/metrics", http.StatusOK},
		{admin + "/readyz", http.StatusOK},
	} {
		if got := getStatus(t, tc.url, "test-api-key"); got != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.url, got, tc.want)
		}
	}
	if got := getStatus(t, api+"/api/stats", "wrong"); got != http.StatusUnauthorized {
		t.Errorf("wrong key on the API listener: %d, want 401", got)
	}
	req, _ := http.NewRequest(http.MethodDelete, api+"/api/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Errorf("DELETE /api/stats on the API listener: %d Allow %q, want 405 with Allow", resp.StatusCode, resp.Header.Get("Allow"))
	}

	shared := startNode(t, nil)
	if shared.APIAddr().String() != shared.AdminAddr().String() {
		t.Errorf("without APIAddr the API is on %s, not the admin %s", shared.APIAddr(), shared.AdminAddr())
	}
	if got := getStatus(t, "http://"+shared.AdminAddr().String()+"/api/stats", "test-api-key"); got != http.StatusOK {
		t.Errorf("shared listener /api/stats: %d", got)
	}
}
