package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/anchat/realtime/internal/syncbuf"
	"github.com/anchat/realtime/socketio"
)

// Tests of the bounds of docs/SECURITY.md, "Tokens, events, labels and
// logs": what a logged-in client (or a client with forged tokens) can make
// the node keep, log or send.

// scrapeSeries returns the number of realtime_* series /metrics exposes and
// the body's size.
func scrapeSeries(t *testing.T, n *Node) (series, bytes int) {
	t.Helper()
	resp, err := http.Get("http://" + n.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		bytes += len(line) + 1
		if strings.HasPrefix(line, "realtime_") {
			series++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return series, bytes
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestUnknownEventNamesKeepLabelsBounded floods 3,000 unique 8 KB event names
// over a real connection: the /metrics series count stays fixed, the heap
// does not keep the names, and the error echoed to the client names the
// event cut to 64 bytes.
func TestUnknownEventNamesKeepLabelsBounded(t *testing.T) {
	n := startNode(t, nil)
	c := connect(t, n.Addr().String(), token(t, "flooder", time.Hour, nil))
	// One of each first, so that every series this test can create exists.
	mustJSON(t, c.emit("warm-up", map[string]string{}, true), new(map[string]any))
	seriesBefore, bytesBefore := scrapeSeries(t, n)
	heapBefore := heapInuse()

	const names, nameBytes = 3000, 8 << 10
	pad := strings.Repeat("n", nameBytes)
	var last json.RawMessage
	for i := range names {
		last = c.emit(fmt.Sprintf("%06d-%s", i, pad), map[string]string{}, true)
	}
	var ack struct {
		OK    bool
		Error struct{ Code, Message string }
	}
	mustJSON(t, last, &ack)
	if ack.OK || ack.Error.Code != codeInvalidPayload || len(ack.Error.Message) > 2*maxEventNameEcho {
		t.Fatalf("unknown event answer %s", last)
	}

	heapAfter := heapInuse()
	seriesAfter, bytesAfter := scrapeSeries(t, n)
	t.Logf("series %d -> %d, /metrics %d -> %d bytes, heap in use %d -> %d KiB",
		seriesBefore, seriesAfter, bytesBefore, bytesAfter, heapBefore>>10, heapAfter>>10)
	if seriesAfter != seriesBefore {
		t.Errorf("%d unknown event names took the realtime_ series from %d to %d", names, seriesBefore, seriesAfter)
	}
	if bytesAfter > bytesBefore+4<<10 {
		t.Errorf("/metrics grew from %d to %d bytes", bytesBefore, bytesAfter)
	}
	// The names total 24 MiB: keeping them would show at once.
	if heapAfter > heapBefore+4<<20 {
		t.Errorf("heap in use grew by %d KiB after %d unique event names", (heapAfter-heapBefore)>>10, names)
	}
	// Without an ack the error event names the event, cut.
	c.emit("x"+pad, map[string]string{}, false)
	p := c.waitEvent(evError, 5*time.Second)
	var ev struct{ Event, Code string }
	mustJSON(t, p.data, &ev)
	if ev.Code != codeInvalidPayload || len(ev.Event) > maxEventNameEcho || !strings.HasPrefix(ev.Event, "xnnn") {
		t.Errorf("error event %.200s", p.data)
	}
}

// TestLabelSetsAreFixed checks every bounded family maps an outsider to its
// fallback and never creates a series for it.
func TestLabelSetsAreFixed(t *testing.T) {
	n := startNode(t, nil)
	m := n.srv.metrics
	before, _ := scrapeSeries(t, n)
	m.eventsIn.WithLabelValues("made-up").Inc()
	m.eventsOut.WithLabelValues("api-event").Inc()
	m.busIn.WithLabelValues("api-event").Inc()
	m.rateLimited.WithLabelValues("made-up").Inc()
	m.refused.WithLabelValues("MADE_UP").Inc()
	m.disconnects.WithLabelValues("made_up").Inc()
	m.handlerSeconds.observe("made-up", time.Millisecond)
	after, _ := scrapeSeries(t, n)
	if after != before {
		t.Fatalf("series %d -> %d", before, after)
	}
	if got := sampleCount(m.handlerSeconds.byName[evUnknown]); got != 1 {
		t.Errorf("handler seconds unknown counted %d, want 1", got)
	}
	for name, got := range map[string]float64{
		"events in unknown": counterValue(m.eventsIn.WithLabelValues(evUnknown)),
		"events out other":  counterValue(m.eventsOut.WithLabelValues("other")),
		"bus other":         counterValue(m.busIn.WithLabelValues("other")),
		"refused other":     counterValue(m.refused.WithLabelValues("other")),
	} {
		if got != 1 {
			t.Errorf("%s = %v, want 1", name, got)
		}
	}
}

// appendText appends a message of content to chat and returns its event id.
func appendText(t *testing.T, n *Node, chat, content string) string {
	t.Helper()
	res, err := n.srv.appendMessage(newMessage{ChatID: chat, SenderID: "s", Content: content, MessageType: "TEXT", CreatedAt: timestamp(time.Now())}, "s")
	if err != nil {
		t.Fatal(err)
	}
	return res.EventID
}

// joinRecovering sends join_chat with lastEventId and an ack, and returns
// the ack and every recovery frame seen (chat_joined and the ack).
func joinRecovering(t *testing.T, c *testClient, chat, lastEventID string) (ack chatJoinedAck, frames []packet) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"chatId": chat, "lastEventId": lastEventID})
	id := c.ackSeq
	c.ackSeq++
	c.write(string(socketio.AppendEvent(nil, c.nsp, id, evJoinChat, b)))
	for {
		p := c.nextPacket(10 * time.Second)
		if p.typ == socketio.Event && p.event == evChatJoined {
			frames = append(frames, p)
		}
		if p.typ == socketio.Ack && p.id == id {
			frames = append(frames, p)
			mustJSON(t, p.data, &ack)
			return ack, frames
		}
	}
}

type chatJoinedAck struct {
	OK        bool `json:"ok"`
	Recovered bool `json:"recovered"`
	Missed    []struct {
		Event string `json:"event"`
		Data  struct {
			EventID string `json:"eventId"`
			Content string `json:"content"`
		} `json:"data"`
	} `json:"missed"`
}

// TestRecoveryLargerThanQueueFitsMaxPayload rejoins a chat whose 100 missed
// messages of 4,000 CJK and emoji characters (14 KB each, 1.4 MB in all)
// exceed the outbound queue: the member stays connected, each recovery frame
// fits maxPayload, missed holds the newest events that fit, and recovered is
// false.
func TestRecoveryLargerThanQueueFitsMaxPayload(t *testing.T) {
	n := startNode(t, nil)
	const chat = "big-history"
	first := appendText(t, n, chat, "first")
	content := strings.Repeat("漢字", 1000) + strings.Repeat("😀", 2000) // 4,000 characters, 14,000 bytes
	var ids []string
	for range 100 {
		ids = append(ids, appendText(t, n, chat, content))
	}
	c := connect(t, n.Addr().String(), token(t, "rejoiner", time.Hour, nil))
	ack, frames := joinRecovering(t, c, chat, first)
	if !ack.OK || ack.Recovered {
		t.Fatalf("ack ok=%v recovered=%v, want ok and not recovered", ack.OK, ack.Recovered)
	}
	if len(frames) != 2 {
		t.Fatalf("%d recovery frames, want chat_joined and the ack", len(frames))
	}
	maxFrame := n.srv.cfg.Limits.MaxFrame
	for _, f := range frames {
		if len(f.raw) > maxFrame {
			t.Errorf("recovery frame of %d bytes; maxPayload is %d", len(f.raw), maxFrame)
		}
	}
	if len(ack.Missed) == 0 {
		t.Fatal("no missed events, though several fit a frame")
	}
	tail := ids[len(ids)-len(ack.Missed):]
	for i, m := range ack.Missed {
		if m.Data.EventID != tail[i] || m.Data.Content != content {
			t.Fatalf("missed[%d] is %s, want %s (the newest that fit)", i, m.Data.EventID, tail[i])
		}
	}
	t.Logf("missed %d of %d events; frames %d and %d bytes", len(ack.Missed), len(ids), len(frames[0].raw), len(frames[1].raw))
	// Still connected and usable, and live delivery resumes.
	next := appendText(t, n, chat, "after")
	p := c.waitEvent(evNewMessage, 5*time.Second)
	var live struct{ EventID string }
	mustJSON(t, p.data, &live)
	if live.EventID != next {
		t.Fatalf("live event %s, want %s", live.EventID, next)
	}
}

// TestRecoveryBeyondHistoryReplayKeepsNewest rejoins 150 events behind: the
// 100 replayed are the newest, so they meet live delivery without a gap.
func TestRecoveryBeyondHistoryReplayKeepsNewest(t *testing.T) {
	n := startNode(t, nil)
	const chat = "long-history"
	first := appendText(t, n, chat, "first")
	var ids []string
	for i := range 150 {
		ids = append(ids, appendText(t, n, chat, "m"+itoa(i)))
	}
	c := connect(t, n.Addr().String(), token(t, "behind", time.Hour, nil))
	ack, _ := joinRecovering(t, c, chat, first)
	if !ack.OK || ack.Recovered || len(ack.Missed) != n.srv.cfg.HistoryReplay {
		t.Fatalf("ack ok=%v recovered=%v missed=%d, want ok, not recovered, %d missed", ack.OK, ack.Recovered, len(ack.Missed), n.srv.cfg.HistoryReplay)
	}
	want := ids[len(ids)-len(ack.Missed):]
	for i, m := range ack.Missed {
		if m.Data.EventID != want[i] {
			t.Fatalf("missed[%d] is %s, want %s: not the newest", i, m.Data.EventID, want[i])
		}
	}
}

// TestRecoveryFrameFitsSmallQueue: with a 16 KiB outbound queue, the two
// recovery frames together take at most half of it.
func TestRecoveryFrameFitsSmallQueue(t *testing.T) {
	n := startNode(t, func(c *Config) { c.OutboundQueueBytes = 16 << 10 })
	const chat = "small-queue"
	first := appendText(t, n, chat, "first")
	for range 20 {
		appendText(t, n, chat, strings.Repeat("é", 1000))
	}
	c := connect(t, n.Addr().String(), token(t, "small", time.Hour, nil))
	ack, frames := joinRecovering(t, c, chat, first)
	total := 0
	for _, f := range frames {
		total += len(f.raw)
	}
	if !ack.OK || ack.Recovered || len(ack.Missed) == 0 || total > 8<<10 {
		t.Fatalf("ok=%v recovered=%v missed=%d, frames %d bytes; want some missed within 8 KiB", ack.OK, ack.Recovered, len(ack.Missed), total)
	}
}

// forged returns a token for user signed with the wrong secret.
func forged(t *testing.T, user string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("wrong"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefusedConnectsCloseTheConnection sends 20 CONNECTs with forged
// tokens on one connection: the first maxRefusedConnects are answered, then
// the connection is closed with 1008.
func TestRefusedConnectsCloseTheConnection(t *testing.T) {
	n := startNode(t, nil)
	c := newClient(t, n.Addr().String(), "/messenger", forged(t, "f"))
	for range 19 {
		c.write(string(socketio.AppendClientConnect(nil, "/messenger", []byte(`{"token":"`+forged(t, "f")+`"}`))))
	}
	refusals := 0
	for {
		select {
		case p := <-c.in:
			if p.typ == socketio.ConnectError {
				refusals++
			}
			continue
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection still open after %d refusals", refusals)
		}
		break
	}
	for len(c.in) > 0 {
		if p := <-c.in; p.typ == socketio.ConnectError {
			refusals++
		}
	}
	if refusals != maxRefusedConnects || c.closeCode != 1008 {
		t.Fatalf("%d refusals, close code %d; want %d refusals, then 1008", refusals, c.closeCode, maxRefusedConnects)
	}
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(n.srv.metrics.disconnects.WithLabelValues(reasonRefusedConnects)) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("realtime_disconnects_total{reason=refused_connects} not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRefusalFloodLogIsSampled refuses 1,000 CONNECTs over 200 connections
// and counts the "connect refused" log lines: the sampler lets a burst of
// 20 a second through, so the lines are bounded by the time taken, not by
// the refusals. Every refusal is still counted in the metric.
func TestRefusalFloodLogIsSampled(t *testing.T) {
	var logs syncbuf.Buffer
	n := startNode(t, func(c *Config) {
		c.Limits.Connects = 1 << 20
		c.Logger = zerolog.New(&logs).Level(zerolog.InfoLevel)
	})
	const conns, each = 200, maxRefusedConnects
	bad := forged(t, "f")
	connectPacket := "40/messenger," + `{"token":"` + bad + `"}`
	start := time.Now()
	for range conns {
		nc, br, err := dialRaw(t, n.Addr().String(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		c := &testClient{t: t, nc: nc, br: br}
		for range each {
			c.write(connectPacket)
		}
	}
	refused := n.srv.metrics.refused.WithLabelValues(codeAuthInvalid)
	deadline := time.Now().Add(30 * time.Second)
	for counterValue(refused) < conns*each {
		if time.Now().After(deadline) {
			t.Fatalf("%v refusals counted, want %d", counterValue(refused), conns*each)
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	lines := 0
	for _, l := range logs.Lines() {
		if strings.Contains(l, `"message":"connect refused"`) {
			lines++
		}
	}
	bound := 20 * (int(elapsed/time.Second) + 2)
	t.Logf("%d refusals in %v: %d log lines (bound %d)", conns*each, elapsed, lines, bound)
	if lines == 0 || lines > bound {
		t.Fatalf("%d refusal log lines for %d refusals in %v; want 1 to %d", lines, conns*each, elapsed, bound)
	}
}

// TestTokenClaimBounds refuses tokens whose claims are out of bounds with
// AUTH_INVALID and accepts those at the bounds.
func TestTokenClaimBounds(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Limits.Connects = 1 << 20 })
	addr := n.Addr().String()
	profiles := func(k int, id func(int) string) []string {
		out := make([]string, k)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	short := func(i int) string { return "p" + itoa(i) }
	signed := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	cases := []struct {
		name  string
		token string
		ok    bool
	}{
		{"sub of 128 bytes", token(t, strings.Repeat("u", 128), time.Hour, nil), true},
		{"sub of 129 bytes", token(t, strings.Repeat("u", 129), time.Hour, nil), false},
		{"sub of 10 KB", token(t, strings.Repeat("u", 10<<10), time.Hour, nil), false},
		{"sub with a newline", token(t, "u\nforged log line", time.Hour, nil), false},
		{"sub with a control character", token(t, "u\x01", time.Hour, nil), false},
		{"sub with a brace", token(t, "{u}", time.Hour, nil), false},
		{"100 profiles", token(t, "p100", time.Hour, map[string]any{"profiles": profiles(100, short)}), true},
		{"101 profiles", token(t, "p101", time.Hour, map[string]any{"profiles": profiles(101, short)}), false},
		{"1,000 profiles", token(t, "p1k", time.Hour, map[string]any{"profiles": profiles(1000, short)}), false},
		{"profile id with a space", token(t, "psp", time.Hour, map[string]any{"profiles": []string{"a b"}}), false},
		{"name of 128 characters", token(t, "n128", time.Hour, map[string]any{"name": strings.Repeat("名", 128)}), true},
		{"name of 129 characters", token(t, "n129", time.Hour, map[string]any{"name": strings.Repeat("名", 129)}), false},
		{"name with a control character", token(t, "nctl", time.Hour, map[string]any{"name": "a\x00b"}), false},
		{"exp as a string", signed(jwt.MapClaims{"sub": "es", "exp": fmt.Sprint(exp)}), false},
		{"nbf as a string", signed(jwt.MapClaims{"sub": "ns", "exp": exp, "nbf": "0"}), false},
		{"token over 16 KiB", token(t, "big", time.Hour, map[string]any{"pad": strings.Repeat("x", 16<<10)}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, addr, "/messenger", tc.token)
			p := c.nextPacket(5 * time.Second)
			if tc.ok {
				if p.typ != socketio.Connect {
					t.Fatalf("refused: %s", p)
				}
				return
			}
			if got := connectErrorCode(t, p); got != codeAuthInvalid {
				t.Fatalf("code %q, want AUTH_INVALID", got)
			}
		})
	}
}

// apiCall sends an authorised server API request.
func apiCall(t *testing.T, n *Node, method, path string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.AdminAddr().String()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test-api-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestServerAPIBounds checks the server API's answers to out-of-bounds
// requests.
func TestServerAPIBounds(t *testing.T) {
	n := startNode(t, nil)
	// jsonBody is a body of v as JSON; noBody is none.
	jsonBody := func(v any) func() io.Reader {
		return func() io.Reader {
			b, _ := json.Marshal(v)
			return strings.NewReader(string(b))
		}
	}
	noBody := func() io.Reader { return nil }
	huge := strings.Repeat("x", 200<<10)
	cases := []struct {
		name, method, path string
		body               func() io.Reader
		status             int
		allow              string
	}{
		{"event name with a newline", "POST", "/api/users/u1/events",
			jsonBody(map[string]any{"event": "a\nb", "data": 1}), http.StatusBadRequest, ""},
		{"event name with a control character", "POST", "/api/users/u1/events",
			jsonBody(map[string]any{"event": "a\x01", "data": 1}), http.StatusBadRequest, ""},
		{"user event larger than maxPayload", "POST", "/api/users/u1/events",
			jsonBody(map[string]any{"event": "big", "data": strings.Repeat("x", 70<<10)}), http.StatusRequestEntityTooLarge, ""},
		{"user event that fits", "POST", "/api/users/u1/events",
			jsonBody(map[string]any{"event": "fits", "data": strings.Repeat("x", 60<<10)}), http.StatusAccepted, ""},
		{"wrong method", "GET", "/api/chats/c1/messages", noBody, http.StatusMethodNotAllowed, "POST"},
		{"wrong method on members", "POST", "/api/chats/c1/members/u1", noBody, http.StatusMethodNotAllowed, "PUT, DELETE"},
		{"unknown path", "GET", "/api/nothing", noBody, http.StatusNotFound, ""},
		{"10 MB body", "POST", "/api/chats/c1/messages",
			func() io.Reader {
				return strings.NewReader(`{"senderId":"s","content":"` + strings.Repeat("x", 10<<20) + `"}`)
			}, http.StatusRequestEntityTooLarge, ""},
		{"200 KB senderName", "POST", "/api/chats/c1/messages",
			jsonBody(map[string]any{"senderId": "s", "content": "hi", "senderName": huge[:200<<10-100]}), http.StatusRequestEntityTooLarge, ""},
		{"senderName with a control character", "POST", "/api/chats/c1/messages",
			jsonBody(map[string]any{"senderId": "s", "content": "hi", "senderName": "a\nb"}), http.StatusBadRequest, ""},
		{"200 KB replyTo", "POST", "/api/chats/c1/messages",
			jsonBody(map[string]any{"senderId": "s", "content": "hi", "replyTo": huge[:200<<10-100]}), http.StatusBadRequest, ""},
		{"message within bounds", "POST", "/api/chats/c1/messages",
			jsonBody(map[string]any{"senderId": "s", "content": "hi", "senderName": strings.Repeat("名", 128), "replyTo": "m-1"}), http.StatusCreated, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := apiCall(t, n, tc.method, tc.path, tc.body())
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.200s", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
			if resp.StatusCode >= 400 {
				var e struct {
					Error struct{ Code, Message string }
				}
				if json.Unmarshal([]byte(body), &e) != nil || e.Error.Code == "" {
					t.Fatalf("error body %.200s", body)
				}
			}
		})
	}
}

// TestLabelSetsCoverConstants parses the package's sources: every close
// reason (reason*), wire code (code*) and event name (ev*) declared must be
// in its label set, or it would be counted as "other" — a reason or code
// added later must be added to metrics.go too.
func TestLabelSetsCoverConstants(t *testing.T) {
	fset := gotoken.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != gotoken.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != gotoken.STRING {
						continue
					}
					value, _ := strconv.Unquote(lit.Value)
					var sets []labelSet
					switch {
					case strings.HasPrefix(id.Name, "reason"):
						sets = []labelSet{reasonLabels}
					case strings.HasPrefix(id.Name, "code"):
						sets = []labelSet{codeLabels}
					case strings.HasPrefix(id.Name, "ev"):
						sets = []labelSet{clientEventLabels, serverEventLabels}
					default:
						continue
					}
					checked++
					found := false
					for _, s := range sets {
						_, in := s.known[value]
						found = found || in
					}
					if !found {
						t.Errorf("%s: %s = %q is in no label set of metrics.go", fset.Position(id.Pos()), id.Name, value)
					}
				}
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d constants checked", checked)
	}
}

// TestRepeatedConnectIsNotReverified floods CONNECTs repeating the
// connection's token: each is answered, and the token is parsed and checked
// once; another token is checked.
func TestRepeatedConnectIsNotReverified(t *testing.T) {
	n := startNode(t, nil)
	tok := token(t, "repeat", time.Hour, nil)
	c := connect(t, n.Addr().String(), tok)
	before := n.srv.verifier.parsed.Load()
	const repeats = 50
	for range repeats {
		c.write(`40/messenger,{"token":"` + tok + `"}`)
	}
	for i := range repeats {
		if p := c.nextPacket(5 * time.Second); p.typ != socketio.Connect {
			t.Fatalf("repeat %d: %s", i, p)
		}
	}
	if got := n.srv.verifier.parsed.Load() - before; got != 0 {
		t.Fatalf("%d repeated CONNECTs parsed the token %d times, want 0", repeats, got)
	}
	c.write(`40/messenger,{"token":"` + token(t, "repeat", 2*time.Hour, nil) + `"}`)
	if p := c.nextPacket(5 * time.Second); p.typ != socketio.Connect {
		t.Fatalf("fresh token: %s", p)
	}
	if got := n.srv.verifier.parsed.Load() - before; got != 1 {
		t.Fatalf("a fresh token parsed %d times, want 1", got)
	}
}

// TestRepeatedTokenStillExpires: the identity reused for a repeated token
// is refused once its exp has passed, as golang-jwt would (exp <= now).
func TestRepeatedTokenStillExpires(t *testing.T) {
	now := time.Now()
	v := newVerifier(JWTConfig{Alg: "HS256", Secret: []byte(testSecret)}, func() time.Time { return now })
	exp := now.Add(time.Minute).Truncate(time.Second)
	tok := token(t, "exp", 0, map[string]any{"exp": exp.Unix()})
	var s session
	if _, err := s.verify(v, tok); err != nil {
		t.Fatal(err)
	}
	now = exp
	_, err := s.verify(v, tok)
	var ae *authError
	if !errors.As(err, &ae) || ae.code != codeAuthExpired {
		t.Fatalf("repeated token at exp: %v, want AUTH_EXPIRED", err)
	}
	if _, err := v.verify(tok); !errors.As(err, &ae) || ae.code != codeAuthExpired {
		t.Fatalf("golang-jwt at exp: %v, want AUTH_EXPIRED", err)
	}
}

// TestNamespaceConnectCyclesCloseTheConnection cycles DISCONNECT/CONNECT
// of /messenger on one connection: each CONNECT of a namespace not
// connected reads the user's RTM states, so the cycles are capped at
// maxNamespaceConnects, then the connection is closed with 1008 (not a
// CONNECT_ERROR: the client reconnects on a new connection).
func TestNamespaceConnectCyclesCloseTheConnection(t *testing.T) {
	n := startNode(t, nil)
	tok := token(t, "cycler", time.Hour, nil)
	c := connect(t, n.Addr().String(), tok)
	connects := 1
	for range 2 * maxNamespaceConnects {
		c.write(string(socketio.AppendDisconnect(nil, "/messenger")))
		c.write(string(socketio.AppendClientConnect(nil, "/messenger", []byte(`{"token":"`+tok+`"}`))))
	}
	for {
		select {
		case p := <-c.in:
			switch p.typ {
			case socketio.Connect:
				connects++
			case socketio.ConnectError:
				t.Fatalf("CONNECT_ERROR %q: a time-cured refusal must be a transport close", p.raw)
			}
			continue
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection still open after %d connects", connects)
		}
		break
	}
	for len(c.in) > 0 {
		if p := <-c.in; p.typ == socketio.Connect {
			connects++
		}
	}
	if connects != maxNamespaceConnects || c.closeCode != 1008 {
		t.Fatalf("%d connects, close code %d; want %d, then 1008", connects, c.closeCode, maxNamespaceConnects)
	}
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(n.srv.metrics.disconnects.WithLabelValues(reasonNamespaceConnects)) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("realtime_disconnects_total{reason=namespace_connects} not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
