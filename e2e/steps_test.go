package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/nodetest"
	"github.com/anchat/realtime/internal/syncbuf"
)

// stepScenario is a js/<script> run with node in the background: the one
// runner of every scenario script. The step protocol (js/steps.mjs): the
// script prints "@<MARK>" lines, which the test waits for with expect, and
// reads the command lines the test writes with send; closing its stdin ends
// the run of scripts that wait for it. Its output is logged when the test
// ends; it is killed then if it still runs.
type stepScenario struct {
	name    string
	stdin   io.WriteCloser
	out     *syncbuf.Buffer
	marks   chan string
	done    chan struct{} // closed once the script has ended and err is set
	err     error         // Wait's result, read after done is closed
	started time.Time
}

// scenarioTimeout bounds a script's run; each script's own hard timeout
// (lib.mjs main) is shorter.
const scenarioTimeout = 90 * time.Second

// startStepScenario starts js/<script> with API_KEY and env (which must give
// URL and ADMIN_URL, as lib.mjs requires).
func startStepScenario(t *testing.T, script string, env map[string]string) *stepScenario {
	t.Helper()
	return startScenario(t, script, env, nil)
}

// startScenario is startStepScenario with onLine, which is given every line
// of the script's stdout that is not a marker and keeps it out of the log
// when it returns true.
func startScenario(t *testing.T, script string, env map[string]string, onLine func(line string) bool) *stepScenario {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	cmd := exec.CommandContext(ctx, "node", filepath.Join("js", script))
	cmd.Env = append(nodetest.CleanEnv(), "API_KEY="+apiKey)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	s := &stepScenario{name: script, out: &syncbuf.Buffer{}, marks: make(chan string, 64), done: make(chan struct{}), started: time.Now()}
	cmd.Stderr = s.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { // ends with the script's stdout
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			if m, ok := strings.CutPrefix(line, "@"); ok {
				s.marks <- m
			} else if onLine != nil && onLine(line) {
				continue
			}
			fmt.Fprintf(s.out, "%s\n", line)
		}
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = s.stdin.Close()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			cancel()
			<-s.done
		}
		cancel()
		t.Logf("node %s (%.1fs, exit: %v):\n%s", script, time.Since(s.started).Seconds(), s.err, s.out.String())
	})
	return s
}

// expect waits for the marker "@<mark>"; the test fails when the script ends
// first (it failed) or the marker does not come within the time given.
func (s *stepScenario) expect(t *testing.T, mark string, within time.Duration) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case got := <-s.marks:
			if got == mark {
				return
			}
		case <-s.done:
			// The scanner may have queued the marker just before the end.
			for {
				select {
				case got := <-s.marks:
					if got == mark {
						return
					}
				default:
					t.Fatalf("%s ended (%v) before @%s:\n%s", s.name, s.err, mark, s.out.String())
				}
			}
		case <-timer.C:
			t.Fatalf("%s did not print @%s within %v", s.name, mark, within)
		}
	}
}

// send writes one command line to the script.
func (s *stepScenario) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		t.Fatalf("writing %q to %s: %v", line, s.name, err)
	}
}

// wait waits for the script to end and fails the test if it failed.
func (s *stepScenario) wait(t *testing.T, within time.Duration) {
	t.Helper()
	if err := s.end(within); err != nil {
		t.Fatal(err)
	}
}

// end waits up to within for the script to end; it returns why it failed
// or did not end, nil when it exited 0.
func (s *stepScenario) end(within time.Duration) error {
	select {
	case <-s.done:
	case <-time.After(within):
		return fmt.Errorf("%s did not end within %v", s.name, within)
	}
	if s.err != nil {
		return fmt.Errorf("%s failed: %v", s.name, s.err)
	}
	return nil
}

// RunJS runs the scenario js/<script> to its end with the node's URLs, the
// API key and env, and fails the test when it exits non-zero or runs longer
// than 40 s. Its output (what it observed) is logged either way.
func (n *Node) RunJS(t *testing.T, script string, env map[string]string) {
	t.Helper()
	all := map[string]string{"URL": n.URL, "ADMIN_URL": n.AdminURL}
	for k, v := range env {
		all[k] = v
	}
	startStepScenario(t, script, all).wait(t, 40*time.Second)
}
