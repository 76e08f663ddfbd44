package node

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/rtm/rtmstatus"
	"github.com/anchat/realtime/socketio"
)

// evKick is an internal user-channel event: the user's connections leave a
// chat (member removed through the server API). "$" names never reach clients.
const evKick = "$leave_chat"

// adminHandler serves health, readiness, metrics and the server API of
// PROTOCOL.md section 4. With Config.APIAddr set, the API is served by the
// second handler, on a listener of its own, and not on the admin one; that
// handler is nil otherwise.
func (srv *server) adminHandler() (admin, apiOnly http.Handler) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": srv.cfg.NodeID})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		status, code := "ready", http.StatusOK
		switch {
		case srv.draining.Load():
			status, code = "draining", http.StatusServiceUnavailable
		case !srv.engineSeen.Load():
			status, code = "starting", http.StatusServiceUnavailable
		case srv.engineDown.Load():
			status, code = "engine unreachable", http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"status": status, "node": srv.cfg.NodeID})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(srv.metrics.reg, promhttp.HandlerOpts{}))
	if srv.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}

	apiMux := mux
	if srv.cfg.APIAddr != "" {
		apiMux = http.NewServeMux()
		apiMux.HandleFunc("/", noRoute(apiMux))
		apiOnly = apiMux
	}
	api := func(pattern string, h http.HandlerFunc) { apiMux.Handle(pattern, srv.requireAPIKey(h)) }
	api("PUT /api/chats/{chatId}/members/{userId}", srv.apiAddMember)
	api("DELETE /api/chats/{chatId}/members/{userId}", srv.apiRemoveMember)
	api("GET /api/chats/{chatId}/members", srv.apiListMembers)
	api("POST /api/chats/{chatId}/messages", srv.apiPostMessage)
	api("POST /api/users/{userId}/events", srv.apiUserEvent)
	api("GET /api/stats", srv.apiStats)
	api("PUT /api/rtm/profiles/{profileId}", srv.apiPutProfile)
	api("DELETE /api/rtm/profiles/{profileId}", srv.apiDeleteProfile)
	// The admin console (console.go) lives where the API is served: its
	// page calls the API from its own origin.
	srv.consoleRoutes(apiMux, api)
	mux.HandleFunc("/", noRoute(mux))
	return mux, apiOnly
}

// noRoute answers what mux has no route for: 405 with Allow when the path
// has routes for other methods, else 404.
func noRoute(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			apiError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", "))
			return
		}
		apiError(w, http.StatusNotFound, "NOT_FOUND", "no route for "+r.Method+" "+r.URL.Path)
	}
}

// allowedMethods lists the methods mux serves r's path with, other than by
// the catch-all "/" (which would otherwise answer 404 where 405 is due:
// RFC 9110 section 15.5.6).
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

func (srv *server) isReady() bool {
	return !srv.draining.Load() && srv.engineSeen.Load() && !srv.engineDown.Load()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError writes {"error":{"code","message"}}.
func apiError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func (srv *server) requireAPIKey(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv.cfg.APIKey == "" {
			apiError(w, http.StatusServiceUnavailable, "API_DISABLED", "the server API is disabled: no API key is configured")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(srv.cfg.APIKey)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="realtime"`)
			apiError(w, http.StatusUnauthorized, "UNAUTHORIZED", "missing or wrong API key (Authorization: Bearer <key>)")
			return
		}
		next(w, r)
	})
}

// apiEngineError maps engine failures to HTTP.
func apiEngineError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, bus.ErrNotFound):
		apiError(w, http.StatusNotFound, codeNotFound, "not found")
	case isUnavailable(err):
		apiError(w, http.StatusServiceUnavailable, codeUnavailable, "the cluster store is unreachable; nothing was done, retry")
	default:
		apiError(w, http.StatusInternalServerError, codeInternal, err.Error())
	}
}

func pathIDs(w http.ResponseWriter, r *http.Request, names ...string) ([]string, bool) {
	out := make([]string, len(names))
	for i, n := range names {
		v := r.PathValue(n)
		if !validID(v) {
			apiError(w, http.StatusBadRequest, codeInvalidPayload, n+" must be 1 to 128 characters without spaces or braces")
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func (srv *server) apiAddMember(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "chatId", "userId")
	if !ok {
		return
	}
	added, err := srv.cfg.Engines.Membership.Add(r.Context(), ids[0], ids[1])
	if err != nil {
		apiEngineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"chatId": ids[0], "userId": ids[1], "added": added})
}

func (srv *server) apiRemoveMember(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "chatId", "userId")
	if !ok {
		return
	}
	removed, err := srv.cfg.Engines.Membership.Remove(r.Context(), ids[0], ids[1])
	if err != nil {
		apiEngineError(w, err)
		return
	}
	// Every node with connections of the user makes them leave the chat.
	data, _ := json.Marshal(chatPayload{ChatID: ids[0]})
	if err := srv.cfg.Engines.Bus.Publish(r.Context(), bus.User(ids[1]), evKick, data); err != nil {
		apiEngineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"chatId": ids[0], "userId": ids[1], "removed": removed})
}

func (srv *server) apiListMembers(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "chatId")
	if !ok {
		return
	}
	members, err := srv.cfg.Engines.Membership.Members(r.Context(), ids[0])
	if err != nil {
		apiEngineError(w, err)
		return
	}
	if members == nil {
		members = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"chatId": ids[0], "members": members})
}

const maxAPIBody = 256 << 10

// decodeBody decodes a JSON request body of at most maxAPIBody bytes into v.
// It answers the error itself (413 past the limit, 400 for bad JSON) and
// reports whether v was filled.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody)).Decode(v)
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooLarge):
		apiError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxAPIBody))
	default:
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "malformed JSON body: "+err.Error())
	}
	return false
}

// validEventName accepts a server API event name: 1 to 64 bytes of UTF-8
// without control characters.
func validEventName(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func (srv *server) apiPostMessage(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "chatId")
	if !ok {
		return
	}
	var p struct {
		SenderID    string            `json:"senderId"`
		SenderName  string            `json:"senderName"`
		Content     *string           `json:"content"`
		MessageType string            `json:"messageType"`
		Attachments []json.RawMessage `json:"attachments"`
		ReplyTo     string            `json:"replyTo"`
	}
	if !decodeBody(w, r, &p) {
		return
	}
	switch {
	case !validID(p.SenderID):
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "senderId must be an id of 1 to 128 characters without spaces or braces")
		return
	case utf8.RuneCountInString(p.SenderName) > maxNameChars:
		apiError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("senderName must be at most %d characters", maxNameChars))
		return
	case !validName(p.SenderName):
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "senderName must be UTF-8 without control characters")
		return
	case p.ReplyTo != "" && !validID(p.ReplyTo):
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "replyTo must be a message id")
		return
	}
	if p.MessageType == "" {
		p.MessageType = "TEXT"
	}
	atts, e := srv.validateMessage(p.Content, p.MessageType, p.Attachments, true)
	if e != nil {
		status := http.StatusBadRequest
		if e.Code == codeTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		apiError(w, status, e.Code, e.Message)
		return
	}
	msg := newMessage{ChatID: ids[0], SenderID: p.SenderID, SenderName: p.SenderName, Content: *p.Content,
		MessageType: p.MessageType, Attachments: atts, ReplyTo: p.ReplyTo, CreatedAt: timestamp(srv.cfg.Now())}
	res, err := srv.appendMessage(msg, p.SenderID)
	if err != nil {
		apiEngineError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"chatId": ids[0], "messageId": res.MessageID,
		"eventId": res.EventID, "createdAt": msg.CreatedAt})
}

// userEventOverhead is the size of a user event's packet besides its data,
// in the longer of the two namespaces.
func (srv *server) userEventOverhead(event string) int {
	return len(socketio.AppendEvent(nil, srv.cfg.Namespace, -1, event, nil)) + 1 // +1: the comma before data
}

func (srv *server) apiUserEvent(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "userId")
	if !ok {
		return
	}
	var p struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	if !decodeBody(w, r, &p) {
		return
	}
	switch {
	case !validEventName(p.Event):
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "event must be a name of 1 to 64 bytes without control characters")
		return
	case socketio.IsReservedEvent(p.Event) || strings.HasPrefix(p.Event, "$"):
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "event "+p.Event+" is reserved by Socket.IO and cannot be emitted")
		return
	}
	// The event goes out as one frame: keep it within maxPayload.
	if room := srv.cfg.Limits.MaxFrame - srv.userEventOverhead(p.Event); len(p.Data) > room {
		apiError(w, http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("data must be at most %d bytes of JSON", room))
		return
	}
	if len(p.Data) == 0 {
		p.Data = json.RawMessage("null")
	}
	if err := srv.cfg.Engines.Bus.Publish(r.Context(), bus.User(ids[0]), p.Event, p.Data); err != nil {
		apiEngineError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"userId": ids[0], "event": p.Event})
}

func (srv *server) apiStats(w http.ResponseWriter, r *http.Request) {
	st, err := srv.cfg.Engines.Presence.Stats(r.Context())
	if err != nil {
		apiEngineError(w, err)
		return
	}
	chats, users := srv.hub.counts()
	out := map[string]any{
		"cluster": map[string]int{"nodes": st.Nodes, "connections": st.Connections, "users": st.Users, "chats": st.Chats},
		"node": map[string]any{"id": srv.cfg.NodeID, "connections": srv.connCount(), "users": users, "chats": chats,
			"goroutines": runtime.NumGoroutine(), "ready": srv.isReady(), "draining": srv.draining.Load()},
	}
	if srv.cfg.RTM != nil {
		rs, err := srv.cfg.RTM.Stats(r.Context())
		if err != nil {
			apiEngineError(w, err)
			return
		}
		page, ok := srv.rtmProfilePage(w, r)
		if !ok {
			return
		}
		out["rtm"] = struct {
			rtmstatus.Stats
			rtmProfilePage
		}{rs, page}
	}
	writeJSON(w, http.StatusOK, out)
}

func (srv *server) rtmEnabled(w http.ResponseWriter) bool {
	if srv.cfg.RTM == nil {
		apiError(w, http.StatusServiceUnavailable, "RTM_DISABLED", "the RTM bridge is not configured (--rtm-url)")
		return false
	}
	return true
}

func (srv *server) apiPutProfile(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "profileId")
	if !ok || !srv.rtmEnabled(w) {
		return
	}
	var p struct {
		Session json.RawMessage `json:"session"`
	}
	if !decodeBody(w, r, &p) {
		return
	}
	if len(p.Session) == 0 || p.Session[0] != '{' {
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "body must be {\"session\": {\"cookies\": ...}}")
		return
	}
	if err := srv.cfg.RTM.PutProfile(r.Context(), ids[0], p.Session); err != nil {
		if isUnavailable(err) {
			apiEngineError(w, err)
			return
		}
		apiError(w, http.StatusBadRequest, codeInvalidPayload, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"profileId": ids[0], "stored": true})
}

func (srv *server) apiDeleteProfile(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "profileId")
	if !ok || !srv.rtmEnabled(w) {
		return
	}
	if err := srv.cfg.RTM.DeleteProfile(r.Context(), ids[0]); err != nil {
		apiEngineError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"profileId": ids[0], "deleted": true})
}
