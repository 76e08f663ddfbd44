package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The rtm scenario drives cmd/rtmsim, the stand-in RTM provider: every
// injected upstream event is a MessageSent for one profile, whose text
// carries the marker; the node's bridge turns it into message_toast for the
// users operating the profile (the profiles claim of their tokens), and the
// receivers measure it like a chat message (group = profile, member 0).
//
// Control API used (cmd/rtmsim, DESIGN.md "RTM upstream"):
//
//	POST <rtm-control>/control/emit
//	{"profileId":"...","type":"MessageSent","data":{"dialogId":"...","messageId":"...","fromId":"...","text":"..."}}
//
// and on the node, before connecting, the server API stores a session per
// profile so the leader opens its upstream connection:
//
//	PUT <api-url>/api/rtm/profiles/{profileId}   {"session":{"cookies":"..."}}

// registerProfiles stores a session for every profile of the run on the node.
func registerProfiles(ctx context.Context, cfg *Config) error {
	client := &http.Client{Timeout: 5 * time.Second}
	for g := range cfg.Profiles {
		body := `{"session":{"cookies":"bench=` + cfg.RunID + `"}}`
		req, err := http.NewRequestWithContext(ctx, http.MethodPut,
			strings.TrimRight(cfg.APIURL, "/")+"/api/rtm/profiles/"+cfg.profileID(g), strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("bench: store RTM profile: %w", err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("bench: store RTM profile %s: HTTP %d: %s", cfg.profileID(g), resp.StatusCode, bytes.TrimSpace(msg))
		}
	}
	return nil
}

// waitUpstream waits until rtmsim reports an open upstream connection for
// every profile of the run (the node's RTM leader has connected them).
func waitUpstream(ctx context.Context, cfg *Config, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	url := strings.TrimRight(cfg.RTMControlURL, "/") + "/control/connections"
	for {
		var conns []struct {
			ProfileID string  `json:"profileId"`
			Status    int     `json:"status"`
			ClosedAt  *string `json:"closedAt"`
		}
		open := map[string]bool{}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&conns)
			resp.Body.Close()
		}
		if err == nil {
			for _, c := range conns {
				if c.Status == http.StatusSwitchingProtocols && c.ClosedAt == nil {
					open[c.ProfileID] = true
				}
			}
			missing := 0
			for g := range cfg.Profiles {
				if !open[cfg.profileID(g)] {
					missing++
				}
			}
			if missing == 0 {
				return nil
			}
			err = fmt.Errorf("%d of %d profiles have no upstream connection", missing, cfg.Profiles)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: waiting for the node's RTM upstream connections: %w", err)
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// injectRTM returns a send function that posts one MessageSent to rtmsim,
// for the profiles in turn.
func (w *worker) injectRTM() func() bool {
	cfg := w.cfg
	client := &http.Client{Timeout: 5 * time.Second}
	url := strings.TrimRight(cfg.RTMControlURL, "/") + "/control/emit"
	seqs := make([]int64, cfg.Profiles)
	next := 0
	var text []byte
	return func() bool {
		g := next
		next = (next + 1) % cfg.Profiles
		ts := time.Now().UnixNano()
		m := marker{t: ts, group: int64(g), member: 0, seq: seqs[g]}
		seqs[g]++
		text = appendMarker(text[:0], m)
		body, _ := json.Marshal(map[string]any{
			"profileId": cfg.profileID(g),
			"type":      "MessageSent",
			"data": map[string]any{
				"dialogId":  "bench-dialog-" + strconv.Itoa(g),
				"messageId": "bench-" + cfg.RunID + "-" + strconv.Itoa(g) + "-" + strconv.FormatInt(m.seq, 10),
				"fromId":    "bench-customer",
				"text":      string(text),
			},
		})
		req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			w.sendFailed.Add(1)
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			w.sendFailed.Add(1)
			w.countError("rtm_emit:" + classify(err))
			return false
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			w.sendFailed.Add(1)
			w.countError("rtm_emit:http_" + strconv.Itoa(resp.StatusCode))
			return false
		}
		w.sent.Add(1)
		w.expected.Add(int64(w.joined[g]))
		w.noteSend(ts)
		return true
	}
}
