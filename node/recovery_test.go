package node

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anchat/realtime/bus"
)

// TestRecoveryUnderTrafficIsExact rejoins with lastEventId while messages are
// appended concurrently: the client gets every event after its lastEventId
// exactly once and in order, across the missed list and live delivery.
func TestRecoveryUnderTrafficIsExact(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Limits.Joins = 1 << 20 })
	for round := range 5 {
		chat := "rec" + itoa(round)
		first, err := n.srv.appendMessage(newMessage{ChatID: chat, SenderID: "s", Content: "first", MessageType: "TEXT", CreatedAt: timestamp(time.Now())}, "s")
		if err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		var mu sync.Mutex
		var appended []string
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				res, err := n.srv.appendMessage(newMessage{ChatID: chat, SenderID: "s", Content: "x", MessageType: "TEXT", CreatedAt: timestamp(time.Now())}, "s")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				appended = append(appended, res.EventID)
				mu.Unlock()
				time.Sleep(200 * time.Microsecond)
			}
		}()
		time.Sleep(5 * time.Millisecond) // some history before the rejoin
		c := connect(t, n.Addr().String(), token(t, "r"+itoa(round), time.Hour, nil))
		var joined struct {
			OK     bool `json:"ok"`
			Missed []struct {
				Data struct {
					EventID string `json:"eventId"`
				} `json:"data"`
			} `json:"missed"`
		}
		mustJSON(t, c.emit("join_chat", map[string]string{"chatId": chat, "lastEventId": first.EventID}, true), &joined)
		if !joined.OK {
			t.Fatal("join refused")
		}
		var got []string
		for _, m := range joined.Missed {
			got = append(got, m.Data.EventID)
		}
		time.Sleep(20 * time.Millisecond)
		stop.Store(true)
		wg.Wait()
		mu.Lock()
		want := append([]string(nil), appended...)
		mu.Unlock()
		for len(got) < len(want) {
			p := c.waitEvent("new_message", 5*time.Second)
			var m struct {
				EventID string `json:"eventId"`
			}
			mustJSON(t, p.data, &m)
			got = append(got, m.EventID)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("round %d: event %d is %s, want %s (missed %d, appended %d)", round, i, got[i], want[i], len(joined.Missed), len(want))
			}
		}
		for i := 1; i < len(got); i++ {
			if bus.CompareIDs(got[i-1], got[i]) >= 0 {
				t.Fatalf("round %d: out of order or duplicate at %d: %s then %s", round, i, got[i-1], got[i])
			}
		}
	}
}
