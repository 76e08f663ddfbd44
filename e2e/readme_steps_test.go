package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/nodetest"
)

// The README's cluster and RTM steps run here as written: the shell blocks
// marked <!-- readme-steps: name --> go to bash in the repository's root,
// with only their port numbers moved to free ones (the test must not collide
// with anything listening on the documented ports), and a client check runs
// between the steps that start things and the steps that stop them.

func readmeBlocks(t *testing.T) map[string]string {
	t.Helper()
	blocks, _ := markedBlocks(t, "README.md", "readme-steps", "sh")
	return blocks
}

// movePorts replaces each documented port number in script with a free one
// and returns the mapping.
func movePorts(t *testing.T, script string, ports ...int) (string, map[int]int) {
	t.Helper()
	moved := map[int]int{}
	for _, p := range ports {
		if !regexp.MustCompile(`\b` + strconv.Itoa(p) + `\b`).MatchString(script) {
			t.Fatalf("README steps no longer use port %d: update the test", p)
		}
		moved[p] = nodetest.FreePort(t)
		script = regexp.MustCompile(`\b`+strconv.Itoa(p)+`\b`).ReplaceAllString(script, strconv.Itoa(moved[p]))
	}
	return script, moved
}

// runSteps runs script with bash in the repository root, output to log, and
// kills whatever it left in its process group when the test ends.
func runSteps(t *testing.T, script string, env []string) string {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "steps.log")
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -eu -o pipefail\n"+script)
	cmd.Dir = ".."
	cmd.Env = append(append(nodetest.CleanEnv(), "STEPS_LOG="+logFile), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftovers, if a step failed
	}
	out, _ := os.ReadFile(logFile)
	t.Logf("bash steps:\n%s\n--- output:\n%s", script, out)
	if err != nil {
		t.Fatalf("README steps failed: %v", err)
	}
	return string(out)
}

// checkCommand runs a js/ check from within the steps, with lib.mjs's
// variables set.
func checkCommand(script string, env map[string]string) string {
	var b strings.Builder
	for k, v := range env {
		fmt.Fprintf(&b, "%s=%q ", k, v)
	}
	return b.String() + "node e2e/js/" + script + " </dev/null\n"
}

func TestREADMEClusterSteps(t *testing.T) {
	nodetest.Require(t)
	blocks := readmeBlocks(t)
	start, stop := blocks["cluster"], blocks["cluster-stop"]
	if start == "" || stop == "" {
		t.Fatal("README.md lacks the cluster steps (<!-- readme-steps: cluster --> and cluster-stop)")
	}
	script, ports := movePorts(t, start+"\n@CHECK@\n"+stop, 6400, 8081, 8082, 8083, 9091, 9092, 9093)
	t.Cleanup(func() { // the daemonized Redis is outside the process group
		_ = exec.Command("redis-cli", "-p", strconv.Itoa(ports[6400]), "shutdown", "nosave").Run()
	})
	script = strings.Replace(script, "@CHECK@", checkCommand("readme_cluster.mjs", map[string]string{
		"URL":       fmt.Sprintf("http://127.0.0.1:%d", ports[8081]),
		"URL_B":     fmt.Sprintf("http://127.0.0.1:%d", ports[8083]),
		"ADMIN_URL": fmt.Sprintf("http://127.0.0.1:%d", ports[9091]),
		"API_KEY":   "change-me-too",
	}), 1)
	out := runSteps(t, script, nil)
	if !strings.Contains(out, "PASS") {
		t.Fatal("the client check did not pass")
	}
	// The stop step stopped the Redis it started.
	if err := exec.Command("redis-cli", "-p", strconv.Itoa(ports[6400]), "ping").Run(); err == nil {
		t.Error("redis-server still answers after the README's stop step")
	}
}

func TestREADMERTMSteps(t *testing.T) {
	nodetest.Require(t)
	block := readmeBlocks(t)["rtm"]
	if block == "" {
		t.Fatal("README.md lacks the RTM steps (<!-- readme-steps: rtm -->)")
	}
	before, after, ok := strings.Cut(block, "kill $(jobs -p)")
	if !ok {
		t.Fatal("the RTM steps no longer end with kill $(jobs -p): update the test")
	}
	// bin/ is built by the cluster section's steps, which the RTM section refers to.
	script, ports := movePorts(t, "go build -o bin/ ./cmd/realtime ./cmd/rtmsim\n"+before+"@CHECK@\nkill $(jobs -p)"+after, 7200, 8080, 9090)
	script = strings.Replace(script, "@CHECK@", checkCommand("readme_rtm.mjs", map[string]string{
		"URL":       fmt.Sprintf("http://127.0.0.1:%d", ports[8080]),
		"ADMIN_URL": fmt.Sprintf("http://127.0.0.1:%d", ports[9090]),
		"API_KEY":   "dev-api-key",
	}), 1)
	if out := runSteps(t, script, nil); !strings.Contains(out, "PASS") {
		t.Fatal("the client check did not pass")
	}
}
