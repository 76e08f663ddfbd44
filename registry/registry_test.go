package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/anchat/realtime/internal/redistest"
	"github.com/anchat/realtime/registry"
)

func TestMemory(t *testing.T) {
	contract(t, func(t *testing.T) registry.Registry { return registry.NewMemory() })
}

// TestRedis runs the contract on a single Redis and on a Redis Cluster:
// both keys share the {nodes} hash tag, so every script runs on a cluster.
func TestRedis(t *testing.T) {
	redistest.OnEachDeployment(t, func(t *testing.T, c redis.UniversalClient) {
		contract(t, func(t *testing.T) registry.Registry {
			r, err := registry.NewRedis(c, redistest.Prefix(t))
			if err != nil {
				t.Fatal(err)
			}
			return r
		})
	})
}

func TestRedisUnavailable(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client()
	r, err := registry.NewRedis(c, redistest.Prefix(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := r.List(ctx, 10); !errors.Is(err, registry.ErrUnavailable) {
		t.Fatalf("List with Redis stopped: %v, want ErrUnavailable", err)
	}
}

// contract is what every Registry does.
func contract(t *testing.T, newRegistry func(t *testing.T) registry.Registry) {
	list := func(t *testing.T, r registry.Registry, limit int) []string {
		t.Helper()
		docs, err := r.List(t.Context(), limit)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		var ids []string
		for _, d := range docs {
			var v struct{ ID string }
			if err := json.Unmarshal(d, &v); err != nil {
				t.Fatalf("document %s: %v", d, err)
			}
			ids = append(ids, v.ID)
		}
		return ids
	}
	doc := func(id string, n int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"ID":%q,"n":%d}`, id, n))
	}

	t.Run("ListsLiveNodesByID", func(t *testing.T) {
		r := newRegistry(t)
		for _, id := range []string{"n3", "n1", "n2"} {
			if err := r.Announce(t.Context(), id, doc(id, 1), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if got := fmt.Sprint(list(t, r, 10)); got != "[n1 n2 n3]" {
			t.Fatalf("List = %s, want [n1 n2 n3]", got)
		}
		if got := fmt.Sprint(list(t, r, 2)); got != "[n1 n2]" {
			t.Fatalf("List limit 2 = %s, want [n1 n2]", got)
		}
		// A new announcement replaces the document.
		if err := r.Announce(t.Context(), "n2", doc("n2", 7), time.Minute); err != nil {
			t.Fatal(err)
		}
		docs, _ := r.List(t.Context(), 10)
		if string(docs[1]) != string(doc("n2", 7)) {
			t.Fatalf("n2's document %s, want the latest %s", docs[1], doc("n2", 7))
		}
		if err := r.Remove(t.Context(), "n1"); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(list(t, r, 10)); got != "[n2 n3]" {
			t.Fatalf("List after Remove(n1) = %s, want [n2 n3]", got)
		}
	})

	t.Run("ExpiresSilentNodes", func(t *testing.T) {
		r := newRegistry(t)
		if err := r.Announce(t.Context(), "short", doc("short", 1), 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := r.Announce(t.Context(), "long", doc("long", 1), time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(list(t, r, 10)); got != "[long short]" {
			t.Fatalf("List = %s, want [long short]", got)
		}
		deadline := time.Now().Add(5 * time.Second)
		for fmt.Sprint(list(t, r, 10)) != "[long]" {
			if time.Now().After(deadline) {
				t.Fatalf("the silent node is still listed: %v", list(t, r, 10))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("RefusesBadInput", func(t *testing.T) {
		r := newRegistry(t)
		for name, c := range map[string]struct {
			id  string
			doc string
			ttl time.Duration
		}{
			"empty id": {"", `{}`, time.Second},
			"brace id": {"a{b}", `{}`, time.Second},
			"bad JSON": {"a", `{`, time.Second},
			"huge doc": {"a", `"` + strings.Repeat("a", registry.MaxDocBytes) + `"`, time.Second},
			"no ttl":   {"a", `{}`, 0},
		} {
			if err := r.Announce(t.Context(), c.id, json.RawMessage(c.doc), c.ttl); err == nil {
				t.Errorf("%s: Announce accepted it", name)
			}
		}
		if got := list(t, r, 10); len(got) != 0 {
			t.Fatalf("List after refused announcements = %v", got)
		}
	})
}

// TestRedisListDropsForgedDocuments: documents written into the registry's
// keys by other means than Announce (anyone who can write Redis) come back
// from List only if Announce could have written them: valid JSON of at
// most MaxDocBytes.
func TestRedisListDropsForgedDocuments(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	c := s.Client()
	prefix := redistest.Prefix(t)
	r, err := registry.NewRedis(c, prefix)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := r.Announce(ctx, "real", json.RawMessage(`{"id":"real"}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	live, docs := prefix+":{nodes}:registry", prefix+":{nodes}:registry:docs"
	forged := map[string]string{
		"huge":    `{"id":"huge","apiUrl":"` + strings.Repeat("a", registry.MaxDocBytes) + `"}`,
		"notjson": `{"id":`,
	}
	expiry := float64(time.Now().Add(time.Minute).UnixMilli())
	for id, doc := range forged {
		if err := c.ZAdd(ctx, live, redis.Z{Score: expiry, Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, docs, id, doc).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.List(ctx, registry.MaxNodes)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0]) != `{"id":"real"}` {
		t.Fatalf("List returned %d documents (%.80q...), want the real one alone", len(got), got)
	}
}
