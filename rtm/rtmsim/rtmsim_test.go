package rtmsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/anchat/realtime/rtm/rtmsim"
	"github.com/anchat/realtime/rtm/rtmsim/rtmsimtest"
)

func start(t *testing.T, cfg rtmsim.Config) (*rtmsim.Server, string) {
	t.Helper()
	sim := rtmsimtest.Start(t, cfg)
	return sim.Server, sim.URL
}

func dial(t *testing.T, base, path, cookie string) (net.Conn, error) {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second}
	if cookie != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Cookie": {cookie}})
	}
	conn, _, _, err := d.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+path)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, err
}

func post(t *testing.T, base, route string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(base+route, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestControlAPI(t *testing.T) {
	s, base := start(t, rtmsim.Config{RequireCookie: true, Expired: []string{"p2"}})

	if _, err := dial(t, base, "/ws?profileId=p1", ""); !isStatus(err, 401) {
		t.Fatalf("no cookie: %v, want 401", err)
	}
	if _, err := dial(t, base, "/ws?profileId=p2", "sid=x"); !isStatus(err, 401) {
		t.Fatalf("expired: %v, want 401", err)
	}
	conn, err := dial(t, base, "/ws/p1", "sid=abc")
	if err != nil {
		t.Fatal(err)
	}

	code, out := post(t, base, "/control/emit", map[string]any{"profileId": "p1", "type": "MessageRead", "data": map[string]any{"dialogId": "d1", "messageId": "m1"}})
	if code != 200 || out["delivered"] != 1.0 || out["id"] == "" {
		t.Fatalf("emit: %d %v", code, out)
	}
	msg, err := wsutil.ReadServerText(conn)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"` + out["id"].(string) + `","type":"MessageRead","profileId":"p1","data":{"dialogId":"d1","messageId":"m1"}}`
	if string(msg) != want {
		t.Fatalf("frame %s\nwant  %s", msg, want)
	}
	if code, _ := post(t, base, "/control/emit", map[string]any{"profileId": "p1", "raw": "not json"}); code != 200 {
		t.Fatalf("raw emit: %d", code)
	}
	if msg, _ := wsutil.ReadServerText(conn); string(msg) != "not json" {
		t.Fatalf("raw frame %q", msg)
	}
	if code, _ := post(t, base, "/control/emit", map[string]any{"profileId": "nobody", "type": "MessageRead"}); code != http.StatusConflict {
		t.Fatalf("emit without a connection: %d, want 409", code)
	}
	var sent []rtmsim.Event
	getJSON(t, base+"/control/sent?profileId=p1", &sent)
	if len(sent) != 1 || sent[0].ID != out["id"] {
		t.Fatalf("sent: %+v", sent)
	}

	if code, out := post(t, base, "/control/drop", map[string]any{"profileId": "p1"}); code != 200 || out["dropped"] != 1.0 {
		t.Fatalf("drop: %d %v", code, out)
	}
	if _, err := wsutil.ReadServerText(conn); err == nil {
		t.Fatal("read after drop succeeded")
	}
	post(t, base, "/control/expire", map[string]any{"profileId": "p2", "expired": false})
	if _, err := dial(t, base, "/ws?profileId=p2", "sid=x"); err != nil {
		t.Fatalf("after un-expire: %v", err)
	}
	post(t, base, "/control/refuse", map[string]any{"profileId": "p3", "status": 503})
	if _, err := dial(t, base, "/ws?profileId=p3", "sid=x"); !isStatus(err, 503) {
		t.Fatalf("refused: %v, want 503", err)
	}

	var conns []map[string]any
	getJSON(t, base+"/control/connections", &conns)
	statuses := []float64{401, 401, 101, 101, 503}
	if len(conns) != len(statuses) {
		t.Fatalf("connections: %v", conns)
	}
	for i, c := range conns {
		if c["status"] != statuses[i] {
			t.Errorf("connection %d status %v, want %v", i, c["status"], statuses[i])
		}
		if _, err := time.Parse(time.RFC3339Nano, c["time"].(string)); err != nil {
			t.Errorf("connection %d time: %v", i, err)
		}
	}
	if conns[2]["cookie"] != "sid=abc" || conns[2]["profileId"] != "p1" || conns[2]["closedAt"] == nil || conns[2]["closeReason"] != "dropped" {
		t.Errorf("dropped connection record: %v", conns[2])
	}
	if got := s.Connections("p2"); len(got) != 2 || got[1].Status != 101 || got[1].ClosedAt != nil {
		t.Errorf("Connections(p2) = %+v", got)
	}
	if code, _ := post(t, base, "/control/nope", map[string]any{"profileId": "p1"}); code != 404 {
		t.Errorf("unknown route: %d", code)
	}
}

func isStatus(err error, code int) bool {
	var se ws.StatusError
	return errors.As(err, &se) && int(se) == code
}

func TestGenerator(t *testing.T) {
	s, base := start(t, rtmsim.Config{Profiles: []string{"p1"}, Rate: 100, Mix: map[string]int{rtmsim.DialogLimitChanged: 1}, Seed: 1})
	conn, err := dial(t, base, "/ws?profileId=p1", "")
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 5 {
		msg, err := wsutil.ReadServerText(conn)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			ID, Type, ProfileID string
			Data                struct {
				DialogID         string
				Limit, Remaining *int
			}
		}
		if err := json.Unmarshal(msg, &e); err != nil || e.Type != rtmsim.DialogLimitChanged || e.ProfileID != "p1" ||
			e.ID == "" || e.Data.DialogID == "" || e.Data.Limit == nil || e.Data.Remaining == nil {
			t.Fatalf("generated %s (%v)", msg, err)
		}
	}
	// The simulator logs an event once its write returned, which may be
	// just after the client read it.
	eventually(t, "5 events in the sent log", func() bool { return len(s.Sent("p1")) >= 5 })
}

func TestDropRate(t *testing.T) {
	s, base := start(t, rtmsim.Config{DropRate: 1})
	if _, err := dial(t, base, "/ws?profileId=p1", ""); err != nil {
		t.Fatal(err)
	}
	// The simulator records the connection just after the upgrade answer,
	// so wait for the record, then for its close.
	eventually(t, "a random drop", func() bool {
		c := s.Connections("p1")
		return len(c) == 1 && c[0].ClosedAt != nil && s.Open("p1") == 0
	})
}

func TestListenAndServe(t *testing.T) {
	s, err := rtmsim.New(rtmsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, addr) }()
	var conn net.Conn
	eventually(t, "the listener", func() bool {
		conn, err = dial(t, "http://"+addr, "/ws?profileId=p1", "")
		return err == nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := wsutil.ReadServerText(conn); err == nil {
		t.Fatal("connection still open after shutdown")
	}
}

func TestParseMix(t *testing.T) {
	m, err := rtmsim.ParseMix("MessageSent=8, MessageRead=1,DialogLimitChanged=0")
	if err != nil || m["MessageSent"] != 8 || m["MessageRead"] != 1 || m["DialogLimitChanged"] != 0 {
		t.Fatalf("ParseMix = %v, %v", m, err)
	}
	for _, bad := range []string{"MessageSent", "MessageSent=x", "MessageSent=-1"} {
		if _, err := rtmsim.ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
	if _, err := rtmsim.New(rtmsim.Config{Mix: map[string]int{"Nope": 1}}); err == nil {
		t.Error("unknown type in mix accepted")
	}
}
