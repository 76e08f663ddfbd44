// Package membershiptest is the contract suite every [membership.Store] must
// pass. Run it from the implementation's tests:
//
//	membershiptest.Run(t, func(t *testing.T) membership.Store { return membership.NewMemory() })
package membershiptest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/anchat/realtime/internal/must"
	"github.com/anchat/realtime/membership"
)

// Run runs the suite. newStore is called once per subtest and must return an
// empty store (for Redis: a fresh key prefix).
func Run(t *testing.T, newStore func(t *testing.T) membership.Store) {
	t.Run("AddRemoveReportChanges", func(t *testing.T) {
		s, ctx := newStore(t), ctxFor(t)
		if added := flag(t)(s.Add(ctx, "c1", "alice")); !added {
			t.Fatal("first Add: added=false")
		}
		if added := flag(t)(s.Add(ctx, "c1", "alice")); added {
			t.Fatal("second Add: added=true")
		}
		if removed := flag(t)(s.Remove(ctx, "c1", "alice")); !removed {
			t.Fatal("first Remove: removed=false")
		}
		if removed := flag(t)(s.Remove(ctx, "c1", "alice")); removed {
			t.Fatal("second Remove: removed=true")
		}
		if removed := flag(t)(s.Remove(ctx, "nochat", "nobody")); removed {
			t.Fatal("Remove from unknown chat: removed=true")
		}
	})

	t.Run("IsMember", func(t *testing.T) {
		s, ctx := newStore(t), ctxFor(t)
		flag(t)(s.Add(ctx, "c1", "alice"))
		if !flag(t)(s.IsMember(ctx, "c1", "alice")) {
			t.Fatal("alice not a member of c1")
		}
		if flag(t)(s.IsMember(ctx, "c1", "bob")) {
			t.Fatal("bob a member of c1")
		}
		if flag(t)(s.IsMember(ctx, "c2", "alice")) {
			t.Fatal("alice a member of c2")
		}
		flag(t)(s.Remove(ctx, "c1", "alice"))
		if flag(t)(s.IsMember(ctx, "c1", "alice")) {
			t.Fatal("alice still a member after Remove")
		}
	})

	t.Run("MembersSorted", func(t *testing.T) {
		s, ctx := newStore(t), ctxFor(t)
		in := []string{"mallory", "bob", "alice", "Zed", "carol", "bob"}
		for _, u := range in {
			flag(t)(s.Add(ctx, "c1", u))
		}
		flag(t)(s.Add(ctx, "c2", "dave"))
		got := strs(t)(s.Members(ctx, "c1"))
		want := []string{"Zed", "alice", "bob", "carol", "mallory"}
		if !slices.Equal(got, want) {
			t.Fatalf("Members = %q, want %q", got, want)
		}
	})

	t.Run("EmptyChatIsEmptySlice", func(t *testing.T) {
		s, ctx := newStore(t), ctxFor(t)
		got, err := s.Members(ctx, "nochat")
		if err != nil {
			t.Fatalf("Members of unknown chat: %v", err)
		}
		if got == nil || len(got) != 0 {
			t.Fatalf("Members of unknown chat = %#v, want empty non-nil slice", got)
		}
		flag(t)(s.Add(ctx, "c1", "alice"))
		flag(t)(s.Remove(ctx, "c1", "alice"))
		got = strs(t)(s.Members(ctx, "c1"))
		if got == nil || len(got) != 0 {
			t.Fatalf("Members of emptied chat = %#v, want empty non-nil slice", got)
		}
	})

	t.Run("OddIDs", func(t *testing.T) {
		s, ctx := newStore(t), ctxFor(t)
		chat := "c}{x|y z:ü"
		users := []string{"", "a|b", "{user:x}", "émile", "x y"}
		for _, u := range users {
			if !flag(t)(s.Add(ctx, chat, u)) {
				t.Fatalf("Add %q: added=false", u)
			}
		}
		for _, u := range users {
			if !flag(t)(s.IsMember(ctx, chat, u)) {
				t.Fatalf("%q not a member", u)
			}
		}
		want := slices.Clone(users)
		slices.Sort(want)
		if got := strs(t)(s.Members(ctx, chat)); !slices.Equal(got, want) {
			t.Fatalf("Members = %q, want %q", got, want)
		}
		if flag(t)(s.IsMember(ctx, "c}{x|y z", "a|b")) {
			t.Fatal("prefix of the chat id shares its members")
		}
	})
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// flag and strs fail the test on a non-nil error and return the value:
// flag(t)(s.Add(ctx, chat, user)).
func flag(t *testing.T) func(bool, error) bool         { return must.Get[bool](t) }
func strs(t *testing.T) func([]string, error) []string { return must.Get[[]string](t) }
