package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/anchat/realtime/internal/nodetest"
)

// TestAdminConsoleInBrowser drives the admin console in Debian's chromium
// (puppeteer-core, js/admin_console.mjs) against the three-node RTM
// cluster on Redis: login, cluster, user lookup and disconnect, chat
// system message, RTM session, live events, and the test console's toasts
// for a new_message and an rtmsim MessageSent. Each page's screenshot goes
// to the test's temp dir, or to $ADMIN_SCREENSHOT_DIR when set.
func TestAdminConsoleInBrowser(t *testing.T) {
	nodetest.Require(t)
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed (make deps installs Debian's chromium)")
	}
	c := startRTMCluster(t)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	shots := os.Getenv("ADMIN_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	n1.RunJS(t, "admin_console.mjs", map[string]string{
		"N2_URL": n2.URL, "N3_URL": n3.URL, "N2_ID": n2.id, "SIM_URL": c.simURL,
		"ALICE_TOKEN": rtmToken(t, "alice"), "BOB_TOKEN": rtmToken(t, "bob"),
		"SCREENSHOT_DIR": shots, "CHROMIUM": chromium,
	})
	for _, page := range []string{"cluster", "user", "chat", "rtm", "events", "test-console"} {
		b, err := os.ReadFile(filepath.Join(shots, page+".png"))
		if err != nil {
			t.Errorf("screenshot of %s: %v", page, err)
			continue
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s.png is not a PNG", page)
		}
	}
}
