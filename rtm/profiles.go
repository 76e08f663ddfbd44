package rtm

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/anchat/realtime/rtm/rtmstatus"
)

// Statuses returns the current state of each of profileIDs that has one
// (a profile without a stored session has none): the leader's own view on
// the leader, the states the leader stored elsewhere (one round trip that
// reads only these profiles' entries). Its cost follows len(profileIDs), not
// the number of profiles in the cluster: the node calls it on every
// client's CONNECT and sends the states as rtm_status.
func (b *Bridge) Statuses(ctx context.Context, profileIDs []string) (map[string]State, error) {
	if b.leading.Load() {
		b.mu.Lock()
		defer b.mu.Unlock()
		return pick(b.states, profileIDs), nil
	}
	states, err := b.cfg.Store.StatesOf(ctx, profileIDs)
	if err != nil {
		return nil, fmt.Errorf("rtm: profile states: %w", err)
	}
	return states, nil
}

// pick returns the entries of states for ids (those it has).
func pick(states map[string]State, ids []string) map[string]State {
	out := make(map[string]State, len(ids))
	for _, id := range ids {
		if st, ok := states[id]; ok {
			out[id] = st
		}
	}
	return out
}

// Profiles lists the profiles with a state, ordered by id, starting after
// the id after ("" from the first), at most limit of them; next is the id
// to pass as after for the following page, "" after the last one. The
// leader pages its own view (sorting its ids); elsewhere it is one read of
// the store whose cost follows limit (Store.StatesPage).
func (b *Bridge) Profiles(ctx context.Context, after string, limit int) (page []rtmstatus.Profile, next string, err error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("rtm: profiles: limit %d must be positive", limit)
	}
	var stored []StoredState
	var more bool
	if b.leading.Load() {
		stored, more = b.localPage(after, limit)
	} else if stored, more, err = b.cfg.Store.StatesPage(ctx, after, limit); err != nil {
		return nil, "", fmt.Errorf("rtm: profile states: %w", err)
	}
	page = make([]rtmstatus.Profile, 0, len(stored))
	for _, s := range stored {
		f := s.Figures
		p := rtmstatus.Profile{ProfileID: s.ID, State: string(s.State), Reconnects: f.Reconnects}
		if !f.Since.IsZero() {
			p.Since = isoMillis(f.Since)
		}
		if !f.LastEventAt.IsZero() {
			p.LastEventAt = isoMillis(f.LastEventAt)
		}
		page = append(page, p)
	}
	if more && len(stored) > 0 {
		next = stored[len(stored)-1].ID
	}
	return page, next, nil
}

// localPage is pageOf of the leader's own view, sorting its ids outside
// b.mu so that state changes do not wait for the sort.
func (b *Bridge) localPage(after string, limit int) ([]StoredState, bool) {
	b.mu.Lock()
	ids := slices.Collect(maps.Keys(b.states))
	b.mu.Unlock()
	slices.Sort(ids)
	ids, more := pageIDs(ids, after, limit)
	page := make([]StoredState, 0, len(ids))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if st, ok := b.states[id]; ok { // not dropped meanwhile
			page = append(page, StoredState{ID: id, State: st, Figures: b.figures[id]})
		}
	}
	return page, more
}

// pageIDs is the page of the sorted ids after after, at most limit of
// them, and whether others follow.
func pageIDs(ids []string, after string, limit int) ([]string, bool) {
	start, _ := slices.BinarySearch(ids, after)
	if start < len(ids) && ids[start] == after {
		start++
	}
	ids = ids[start:]
	if len(ids) > limit {
		return ids[:limit], true
	}
	return ids, false
}

// pageOf is one page of states in id order (see Store.StatesPage), with
// figures, from maps; more tells whether others follow.
func pageOf(states map[string]State, figures map[string]Figures, after string, limit int) (page []StoredState, more bool) {
	ids, more := pageIDs(slices.Sorted(maps.Keys(states)), after, limit)
	page = make([]StoredState, 0, len(ids))
	for _, id := range ids {
		page = append(page, StoredState{ID: id, State: states[id], Figures: figures[id]})
	}
	return page, more
}

func isoMillis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// noteReconnect counts one reconnect attempt of a profile (leader only).
func (b *Bridge) noteReconnect(profileID string) {
	b.reconnects.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.figures[profileID]
	f.Reconnects++
	b.figures[profileID] = f
	b.dirty[profileID] = struct{}{}
}

// noteEvent records the time of a profile's last upstream frame.
func (b *Bridge) noteEvent(profileID string) {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.figures[profileID]
	f.LastEventAt = now
	b.figures[profileID] = f
	b.dirty[profileID] = struct{}{}
}

// seedFigures starts a term from the figures earlier leaders recorded, so
// reconnect counts and last event times survive a leader change.
func (b *Bridge) seedFigures(ctx context.Context) {
	stored, err := b.cfg.Store.Figures(ctx)
	if err != nil {
		if ctx.Err() == nil {
			b.sampled.Warn().Err(err).Msg("rtm: cannot read the recorded profile figures; counting from zero")
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, s := range stored {
		f := b.figures[id]
		f.Reconnects += s.Reconnects
		if f.LastEventAt.IsZero() {
			f.LastEventAt = s.LastEventAt
		}
		if f.Since.IsZero() {
			f.Since = s.Since
		}
		b.figures[id] = f
	}
}

// flushFigures records the figures of the profiles whose figures changed
// since they were last recorded: one write whose size follows the changes,
// not the number of profiles.
func (b *Bridge) flushFigures(ctx context.Context) {
	b.mu.Lock()
	if len(b.dirty) == 0 {
		b.mu.Unlock()
		return
	}
	figures := make(map[string]Figures, len(b.dirty))
	for id := range b.dirty {
		if f, ok := b.figures[id]; ok {
			figures[id] = f
		}
	}
	clear(b.dirty)
	b.mu.Unlock()
	if err := b.cfg.Store.SetFigures(ctx, figures); err != nil {
		b.mu.Lock()
		for id := range figures {
			b.dirty[id] = struct{}{}
		}
		b.mu.Unlock()
		if ctx.Err() == nil {
			b.sampled.Warn().Err(err).Msg("rtm: cannot record the profile figures; retrying")
		}
	}
}
