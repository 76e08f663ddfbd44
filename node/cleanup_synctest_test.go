package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/presence"
)

// cleanerInBubble is a server reduced to what the cleaner uses (hub, memory
// bus and presence), built inside a synctest bubble so its timers run on the
// bubble's clock.
func cleanerInBubble(t *testing.T) (*server, *presence.Memory, func()) {
	b := bus.NewMemory(bus.MemoryConfig{})
	if err := b.Start(func(bus.Delivery) {}); err != nil {
		t.Fatal(err)
	}
	p := presence.NewMemory()
	srv := &server{cfg: &Config{Engines: Engines{Bus: b, Presence: p}}, log: zerolog.Nop()}
	srv.hub = newHub(srv)
	srv.presence = presenceSlots{srv: srv}
	srv.cleaner = newCleaner(srv)
	go srv.cleaner.run()
	return srv, p, func() {
		srv.cleaner.stop()
		_ = b.Close()
	}
}

func (h *hub) subscribed(ch bus.Channel) bool {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	return h.subbed[ch]
}

// TestCleanerDelaysAndRechecksUnsubscribes: a chat left by its last local
// member stays subscribed for unsubscribeDelay; re-joined meanwhile, it stays
// subscribed; left again, it is unsubscribed once the delay has passed.
func TestCleanerDelaysAndRechecksUnsubscribes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, _, stop := cleanerInBubble(t)
		defer stop()
		h, ch, member := srv.hub, bus.Chat("c"), &conn{}
		setMember := func(in bool) {
			h.mu.Lock()
			if in {
				h.chats["c"] = map[*conn]nsMask{member: nsChat}
			} else {
				delete(h.chats, "c")
			}
			h.mu.Unlock()
		}
		setMember(true)
		if err := h.sync(t.Context(), ch); err != nil || !h.subscribed(ch) {
			t.Fatalf("join: subscribed=%v err=%v", h.subscribed(ch), err)
		}

		setMember(false)
		srv.cleaner.unsubscribeLater(ch)
		time.Sleep(unsubscribeDelay - time.Millisecond)
		synctest.Wait()
		if !h.subscribed(ch) {
			t.Fatal("unsubscribed before the delay")
		}
		setMember(true) // re-joined: the re-check keeps the subscription
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if !h.subscribed(ch) || srv.cleaner.pending() != 0 {
			t.Fatalf("after a re-join: subscribed=%v pending=%d, want subscribed and nothing pending", h.subscribed(ch), srv.cleaner.pending())
		}

		setMember(false)
		srv.cleaner.unsubscribeLater(ch)
		time.Sleep(unsubscribeDelay + time.Millisecond)
		synctest.Wait()
		if h.subscribed(ch) {
			t.Fatal("still subscribed after the delay")
		}
	})
}

// TestCleanerHoldsReleasesWhileEngineDown: a release is done at once while
// the engine is up; while it is down none is attempted, and they are done
// within cleanupRetry of the engine coming back.
func TestCleanerHoldsReleasesWhileEngineDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, p, stop := cleanerInBubble(t)
		defer stop()
		ctx := context.Background()
		connections := func() int {
			st, err := p.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return st.Connections
		}
		for _, id := range []string{"c1", "c2"} {
			if ok, err := p.Acquire(ctx, "u", id, 3); !ok || err != nil {
				t.Fatalf("acquire %s: %v %v", id, ok, err)
			}
		}
		srv.cleaner.release("u", "c1")
		synctest.Wait()
		if n := connections(); n != 1 {
			t.Fatalf("%d entries after a release with the engine up, want 1", n)
		}

		srv.engineDown.Store(true)
		srv.cleaner.release("u", "c2")
		time.Sleep(10 * cleanupRetry)
		synctest.Wait()
		if n, pending := connections(), srv.cleaner.pending(); n != 1 || pending != 1 {
			t.Fatalf("engine down: %d entries, %d pending; want 1 and 1 (nothing attempted)", n, pending)
		}
		srv.engineDown.Store(false)
		time.Sleep(cleanupRetry)
		synctest.Wait()
		if n, pending := connections(), srv.cleaner.pending(); n != 0 || pending != 0 {
			t.Fatalf("engine back: %d entries, %d pending; want 0 and 0", n, pending)
		}
	})
}
