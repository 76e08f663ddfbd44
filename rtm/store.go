package rtm

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/anchat/realtime/bus"
)

// Errors of the package. Wrapped errors are matched with errors.Is.
var (
	// ErrBadSession: PutProfile was given a session it cannot use (the
	// message says why); nothing was stored.
	ErrBadSession = errors.New("rtm: bad session")
	// ErrBadProfileID: an empty, too long or otherwise invalid profile id.
	ErrBadProfileID = errors.New("rtm: bad profile id")
	// ErrUnavailable: the store cannot be reached (or did not answer in
	// time); nothing is known to have been done. It also matches
	// bus.ErrUnavailable, so callers that know only the engine errors (the
	// node answers 503 UNAVAILABLE) treat it alike.
	ErrUnavailable error = unavailableError{}
)

type unavailableError struct{}

func (unavailableError) Error() string        { return "rtm: unavailable" }
func (unavailableError) Is(target error) bool { return target == bus.ErrUnavailable }

// State is a profile's upstream connection state, as sent in rtm_status.
type State string

const (
	StateConnected      State = "connected"       // the upstream WebSocket is open
	StateReconnecting   State = "reconnecting"    // not connected; retrying with backoff (also: first connect in progress)
	StateSessionExpired State = "session_expired" // the provider refused the session (401/403); waiting for a new one
)

// States lists every State, in a fixed order.
var States = []State{StateConnected, StateReconnecting, StateSessionExpired}

// Figures are what the leader reports about one profile besides its state,
// for /api/stats. The leader keeps them current in memory and records them
// in the store on every state change and, when they changed, once per
// Config.ResyncInterval, so other nodes (and the next leader) see them.
type Figures struct {
	Since       time.Time `json:"since"`                // when the profile entered its current state
	LastEventAt time.Time `json:"lastEventAt,omitzero"` // last upstream frame received; zero: none yet
	Reconnects  uint64    `json:"reconnects"`           // upstream reconnect attempts, summed over leaders
}

// StoredState is one profile's reported state and figures (see
// Store.StatesPage).
type StoredState struct {
	ID      string
	State   State
	Figures Figures // zero when none recorded
}

// Session is one stored profile session.
type Session struct {
	// Version increases with every PutSession (cluster-wide), so the leader
	// reconnects when a session is replaced, even by an identical one.
	Version int64
	// Data is the session object as given to PutProfile (compacted JSON).
	Data json.RawMessage
}

// Store keeps what the bridge shares across the cluster: profile sessions
// (so any future leader finds them), the states the leader reports, and the
// upstream event ids already published. [MemoryStore] is the single-node
// engine, [RedisStore] the cluster one; both pass the same contract tests.
type Store interface {
	// PutSession stores or replaces a profile's session with a new version
	// and signals every watcher.
	PutSession(ctx context.Context, profileID string, session json.RawMessage) error
	// DeleteSession forgets the profile's session and its reported state,
	// and signals every watcher. Deleting an unknown profile is not an error.
	DeleteSession(ctx context.Context, profileID string) error
	// Sessions returns every stored session by profile id.
	Sessions(ctx context.Context) (map[string]Session, error)
	// SessionsVersion returns a number that changes with every PutSession
	// and DeleteSession anywhere in the cluster (and may change without
	// one), so the leader rereads Sessions only when it moved.
	SessionsVersion(ctx context.Context) (int64, error)

	// SetState records the leader's view of a profile's state.
	SetState(ctx context.Context, profileID string, state State) error
	// DeleteState forgets a profile's reported state.
	DeleteState(ctx context.Context, profileID string) error
	// States returns the reported states by profile id.
	States(ctx context.Context) (map[string]State, error)
	// StatesOf returns the reported states of profileIDs (those that have
	// one), reading only their entries, so its cost follows len(profileIDs),
	// not the number of profiles in the cluster. It does no I/O for an
	// empty list.
	StatesOf(ctx context.Context, profileIDs []string) (map[string]State, error)
	// StateCounts counts the reported states by state (each of [States];
	// those with none left out): what States would give, counted, without
	// reading every profile's entry.
	StateCounts(ctx context.Context) (map[State]int, error)
	// StatesPage returns the reported states of at most limit profiles
	// (limit > 0), the first ones by id after the id after ("" from the
	// first), in id order, with their recorded figures; more tells whether
	// others follow. Its cost follows limit, not the number of profiles.
	StatesPage(ctx context.Context, after string, limit int) (page []StoredState, more bool, err error)
	// RecountStates rebuilds from the reported states whatever StateCounts
	// and StatesPage keep beside them (the leader calls it once a term and then now and
	// again, so writes of an older version without it are made good).
	RecountStates(ctx context.Context) error

	// SetFigures records the leader's figures of the given profiles,
	// replacing what was recorded for each. DeleteSession and DeleteState
	// forget a profile's figures too.
	SetFigures(ctx context.Context, figures map[string]Figures) error
	// Figures returns the recorded figures by profile id.
	Figures(ctx context.Context) (map[string]Figures, error)

	// MarkSeen records key for ttl; first is false when key was recorded
	// and has not expired (a duplicate).
	MarkSeen(ctx context.Context, key string, ttl time.Duration) (first bool, err error)

	// Signal wakes every watcher (the leader released the lease, say).
	Signal(ctx context.Context) error
	// Watch returns a channel that receives a value (coalesced: one pending
	// at most) after any PutSession, DeleteSession or Signal anywhere in the
	// cluster, and whenever a signal may have been missed (a reconnect). It
	// is closed when ctx ends.
	Watch(ctx context.Context) <-chan struct{}
}

// poke sends on a capacity-1 channel without blocking: a pending value
// already says "look again".
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
