package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/rtm/rtmstatus"
)

// RTM is what the node needs from the RTM bridge (package rtm): the server
// API's profile routes, the figures for /api/stats, /metrics and the stats
// line, and the filter applied to profile-channel deliveries. Nil disables
// the RTM routes (they answer 503 RTM_DISABLED).
type RTM interface {
	// PutProfile stores or replaces a profile's upstream session (kept in the
	// engine so any future leader finds it).
	PutProfile(ctx context.Context, profileID string, session json.RawMessage) error
	// DeleteProfile forgets the profile; the leader drops its connection.
	DeleteProfile(ctx context.Context, profileID string) error
	// Stats reports the bridge's figures as seen from this node.
	Stats(ctx context.Context) (rtmstatus.Stats, error)
	// Accept filters and unwraps one profile-channel delivery: it drops
	// events of an older leader term and returns the client event and its
	// payload.
	Accept(d bus.Delivery) (event string, data json.RawMessage, ok bool)
	// Statuses returns the current state ("connected", "reconnecting",
	// "session_expired") of each of profileIDs that has one.
	Statuses(ctx context.Context, profileIDs []string) (map[string]string, error)
	// Profiles lists the profiles ordered by id, after the id after, at most
	// limit; next is the id to pass as after for the following page ("" at
	// the end).
	Profiles(ctx context.Context, after string, limit int) (page []rtmstatus.Profile, next string, err error)
}

// evRTMStatus is the RTM state event (PROTOCOL.md section 2).
const evRTMStatus = "rtm_status"

// sendRTMStatus sends, right after a CONNECT of namespace ns, one
// rtm_status per profile of the user's token whose state the cluster knows,
// so a client learns a profile is reconnecting or expired without waiting
// for the next change. Failing to read the states only costs the message.
func (srv *server) sendRTMStatus(c *conn, ns nsMask, id *identity) {
	if srv.cfg.RTM == nil || len(id.profiles) == 0 {
		return
	}
	ctx, cancel := srv.engineCtx()
	defer cancel()
	states, err := srv.cfg.RTM.Statuses(ctx, id.profiles)
	if err != nil {
		srv.hotLog.Warn().Err(err).Str("conn", c.sid).Msg("rtm states unavailable; no rtm_status after connect")
		return
	}
	for _, p := range id.profiles {
		if st, ok := states[p]; ok {
			c.emitJSON(ns, evRTMStatus, struct {
				ProfileID string `json:"profileId"`
				State     string `json:"state"`
			}{p, st})
		}
	}
}

// rtmProfilePage is the profile list of /api/stats: ?limit= (1 to 1000,
// default 100) profiles after the id ?after=, and the after of the next page.
type rtmProfilePage struct {
	ProfileList []rtmstatus.Profile `json:"profileList"`
	NextAfter   string              `json:"nextAfter,omitempty"`
}

// rtmProfilePage reads one page of profiles for the request's query; on a
// bad query or an engine error it answers and returns false.
func (srv *server) rtmProfilePage(w http.ResponseWriter, r *http.Request) (rtmProfilePage, bool) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			apiError(w, http.StatusBadRequest, codeInvalidPayload, "limit must be an integer from 1 to 1000")
			return rtmProfilePage{}, false
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !validID(after) {
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "after must be a profile id")
		return rtmProfilePage{}, false
	}
	page, next, err := srv.cfg.RTM.Profiles(r.Context(), after, limit)
	if err != nil {
		apiEngineError(w, err)
		return rtmProfilePage{}, false
	}
	if page == nil {
		page = []rtmstatus.Profile{}
	}
	return rtmProfilePage{ProfileList: page, NextAfter: next}, true
}
