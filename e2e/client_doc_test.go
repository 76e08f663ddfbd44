package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/internal/nodetest"
	"github.com/anchat/realtime/rtm/rtmsim"
	"github.com/anchat/realtime/rtm/rtmsim/rtmsimtest"
)

// The code blocks of docs/CLIENT.md run here, as written, with the real
// socket.io-client against a real node: each test joins some snippets with a
// check script of js/clientdoc/ that drives and asserts them.

// clientDocSnippets reads docs/CLIENT.md and returns its tested blocks by
// name; it fails when a js block has no test marker, so every snippet a
// reader copies is one the suite runs.
func clientDocSnippets(t *testing.T) map[string]string {
	t.Helper()
	out, doc := markedBlocks(t, "docs/CLIENT.md", "test", "js")
	if all, tested := strings.Count(doc, "```js\n"), len(out); all != tested {
		t.Fatalf("docs/CLIENT.md has %d js blocks but %d with a <!-- test: name --> marker: every snippet must be tested", all, tested)
	}
	return out
}

// markedBlocks reads file (relative to the repository's root) and returns,
// by name, its code blocks of lang marked by an HTML comment
// "<!-- marker: name -->" on the line before, and the file's text.
func markedBlocks(t *testing.T, file, marker, lang string) (blocks map[string]string, text string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(file)))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- " + regexp.QuoteMeta(marker) + ": ([a-z0-9_-]+) -->\n```" + regexp.QuoteMeta(lang) + "\n(.*?)\n```")
	blocks = map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		blocks[m[1]] = m[2]
	}
	return blocks, string(b)
}

// runClientDoc writes the named snippets followed by js/clientdoc/<check>
// into one module next to the check and runs it against n.
func runClientDoc(t *testing.T, n *Node, check string, snippets []string, env map[string]string) {
	t.Helper()
	all := clientDocSnippets(t)
	var src strings.Builder
	for _, name := range snippets {
		code, ok := all[name]
		if !ok {
			t.Fatalf("docs/CLIENT.md has no snippet %q", name)
		}
		fmt.Fprintf(&src, "// docs/CLIENT.md, snippet %q\n%s\n\n", name, code)
	}
	body, err := os.ReadFile(filepath.Join("js", "clientdoc", check))
	if err != nil {
		t.Fatal(err)
	}
	src.Write(body)
	gen := filepath.Join("clientdoc", fmt.Sprintf(".gen-%s-%d.mjs", strings.TrimSuffix(check, ".check.mjs"), os.Getpid()))
	if err := os.WriteFile(filepath.Join("js", gen), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join("js", gen)) })
	n.RunJS(t, gen, env)
}

func TestClientDocConnectAndErrors(t *testing.T) {
	n := StartNode(t, "--limit-messages", "2", "--limit-window", "2s")
	env := map[string]string{
		"TOKEN_ALICE":         Token(t, "alice"),
		"TOKEN_ALICE_EXPIRED": Token(t, "alice", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }),
		"TOKEN_ALICE_SHORT":   Token(t, "alice", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(6 * time.Second).Unix() }), // outlives steps 1-3 under load; step 4 waits 10 s for its expiry
		"TOKEN_BOB":           Token(t, "bob"),
	}
	runClientDoc(t, n, "connect.check.mjs", []string{"connect", "errors"}, env)
}

func TestClientDocRejoin(t *testing.T) {
	n := StartNode(t, "--history-size", "3")
	runClientDoc(t, n, "rejoin.check.mjs", []string{"connect", "rejoin"}, users(t))
}

func TestClientDocRTM(t *testing.T) {
	nodetest.Require(t)
	sim := rtmsimtest.Start(t, rtmsim.Config{RequireCookie: true})
	n := StartNode(t, "--rtm-url", sim.WSURL())
	runClientDoc(t, n, "rtm.check.mjs", []string{"connect", "rtm"}, map[string]string{
		"SIM_URL":        sim.URL,
		"TOKEN_OPERATOR": rtmToken(t, "operator", "p1", "p2"),
	})
}
