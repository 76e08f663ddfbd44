package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/anchat/realtime/adminui"
	"github.com/anchat/realtime/bus"
	"github.com/anchat/realtime/socketio"
)

// The admin console's server API (PROTOCOL.md section 4, "Admin console"):
// cluster-wide views built from the node registry and presence, and the
// node-local views (/api/node/...) other nodes ask for them. Cross-node
// calls go to a peer's announced apiUrl with this node's API key.

// Bounds of what the console's endpoints return.
const (
	consoleMaxMembers = 500 // members listed by GET /api/chats/{chatId}
	consoleHistory    = 50  // newest history events listed there
	peerTimeout       = 3 * time.Second
	peerMaxBody       = 1 << 20
)

// evAdminDisconnect is an internal user-channel event: every node closes
// the user's connections (or the one named). "$" names never reach clients.
const evAdminDisconnect = "$disconnect"

// reasonAdmin closes a connection disconnected through the server API.
const reasonAdmin = "admin_disconnect"

// consoleRoutes adds the admin console (/admin/) and its API routes.
func (srv *server) consoleRoutes(mux *http.ServeMux, api func(string, http.HandlerFunc)) {
	mux.Handle("GET /admin/", adminui.Handler("/admin/", srv.consoleSockets))
	mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	// What the page needs before login, without the key (and without an
	// error status, which browsers log as a console error).
	mux.HandleFunc("GET /admin/config.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		writeJSON(w, http.StatusOK, map[string]any{"apiEnabled": srv.cfg.APIKey != "", "dev": srv.cfg.Dev,
			"sockets": srv.consoleSockets(r)})
	})
	api("GET /api/nodes", srv.apiNodes)
	api("GET /api/node", srv.apiNode)
	api("GET /api/node/users/{userId}/connections", srv.apiNodeUserConns)
	api("GET /api/node/events", srv.apiNodeEvents)
	api("GET /api/nodes/{nodeId}/events", srv.apiNodeEventsOf)
	api("GET /api/users/{userId}/connections", srv.apiUserConns)
	api("DELETE /api/users/{userId}/connections", srv.apiDisconnectUser)
	api("DELETE /api/users/{userId}/connections/{connId}", srv.apiDisconnectUser)
	api("GET /api/chats/{chatId}", srv.apiChatOverview)
	api("POST /api/dev/tokens", srv.apiDevToken)
}

// consoleSockets are the WebSocket origins the console page loaded by r
// may connect to (its policy's connect-src, and the test console's choice
// of URLs): this node's public listener at the host the browser reached
// the page by, then Config.ConsoleSocketOrigins.
func (srv *server) consoleSockets(r *http.Request) []string {
	out := []string{}
	if host := browserHost(r.Host); host != "" {
		if addr := srv.addr(); addr != nil {
			if _, port, err := net.SplitHostPort(addr.String()); err == nil {
				scheme := "ws://"
				if srv.tlsConf != nil {
					scheme = "wss://"
				}
				out = append(out, scheme+net.JoinHostPort(host, port))
			}
		}
	}
	return append(out, srv.cfg.ConsoleSocketOrigins...)
}

// browserHost is the host of a request's Host header (without its port)
// when a Content-Security-Policy source can name it (an IPv4 address or a
// host name of letters, digits and '-'), else "": CSP has no form for an
// IPv6 address, and browsers drop a source with one (or with a '_').
func browserHost(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return ""
		}
		return a.String()
	}
	if !validHostName(host) || strings.Contains(host, "_") {
		return ""
	}
	return strings.ToLower(host)
}

// SocketOrigin returns the origin of a ws:// or wss:// URL
// (scheme://host[:port], the host in lower case), as the admin console's
// Content-Security-Policy names it; a URL with credentials, a path other
// than "/", a query or a fragment is refused.
func SocketOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%w: console socket origin %q is not a ws:// or wss:// origin", ErrBadConfig, raw)
	}
	host := browserHost(u.Host)
	if host == "" || strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("%w: console socket origin %q: want a host name or an IPv4 address (a Content-Security-Policy source cannot name an IPv6 address or a '_')", ErrBadConfig, raw)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%w: console socket origin %q: bad port", ErrBadConfig, raw)
		}
		host = net.JoinHostPort(host, port)
	}
	return u.Scheme + "://" + host, nil
}

func (srv *server) apiNodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := srv.nodeInfos(r.Context())
	if err != nil {
		apiEngineError(w, err)
		return
	}
	for i := range nodes {
		nodes[i].APIURLRefused = "" // whatever the document said
		if nodes[i].ID == srv.cfg.NodeID {
			continue
		}
		if _, err := srv.peerPolicy.target(nodes[i].APIURL); err != nil {
			nodes[i].APIURLRefused = err.Error()
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"self": srv.cfg.NodeID, "nodes": nodes})
}

func (srv *server) apiNode(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, srv.announcer.info.Load())
}

// connInfo is one connection in a user lookup.
type connInfo struct {
	Node        string   `json:"node"`
	ConnID      string   `json:"connId"`
	Remote      string   `json:"remote"`
	Since       string   `json:"since"`
	Name        string   `json:"name,omitempty"`
	Profiles    []string `json:"profiles,omitempty"`
	Namespaces  []string `json:"namespaces"`
	Chats       []string `json:"chats"`
	QueuedBytes int      `json:"queuedBytes"`
}

// localUserConns describes this node's connections of userID.
func (srv *server) localUserConns(userID string) []connInfo {
	out := []connInfo{}
	for _, c := range srv.hub.userConns(userID) {
		ci := connInfo{Node: srv.cfg.NodeID, ConnID: c.sid, Remote: c.remote(), Since: timestamp(c.born),
			Namespaces: []string{}, Chats: []string{}}
		if id := c.sess.who.Load(); id != nil {
			ci.Name, ci.Profiles = id.name, id.profiles
		}
		c.sess.mu.Lock()
		for _, ns := range []nsMask{nsRoot, nsChat} {
			if c.sess.nsps&ns != 0 {
				ci.Namespaces = append(ci.Namespaces, srv.nsName(ns))
			}
		}
		for _, j := range c.sess.chats {
			ci.Chats = append(ci.Chats, j.chatID)
		}
		c.sess.mu.Unlock()
		c.mu.Lock()
		ci.QueuedBytes = c.outBytes
		c.mu.Unlock()
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b connInfo) int { return strings.Compare(a.Since, b.Since) })
	return out
}

func (srv *server) apiNodeUserConns(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "userId")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": srv.cfg.NodeID, "userId": ids[0], "connections": srv.localUserConns(ids[0])})
}

// nodeError is a node the console could not ask.
type nodeError struct {
	Node    string `json:"node"`
	Message string `json:"message"`
}

// apiUserConns asks the nodes presence names for the user's connections,
// in parallel, each bounded by peerTimeout.
func (srv *server) apiUserConns(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "userId")
	if !ok {
		return
	}
	userID := ids[0]
	located, err := srv.cfg.Engines.Presence.Locate(r.Context(), []string{userID})
	if err != nil {
		apiEngineError(w, err)
		return
	}
	var nodes []string
	for _, e := range located[userID] {
		n := e.Node
		if n == "" { // memory presence: this node is the cluster
			n = srv.cfg.NodeID
		}
		if !slices.Contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	infos, err := srv.nodeInfos(r.Context())
	if err != nil {
		apiEngineError(w, err)
		return
	}
	var (
		mu     sync.Mutex // guards conns and errs
		conns  = []connInfo{}
		errs   = []nodeError{}
		wg     sync.WaitGroup
		byNode = make(map[string]nodeInfo, len(infos))
	)
	for _, n := range infos {
		byNode[n.ID] = n
	}
	for _, n := range nodes {
		if n == srv.cfg.NodeID {
			local := srv.localUserConns(userID)
			mu.Lock()
			conns = append(conns, local...)
			mu.Unlock()
			continue
		}
		info, live := byNode[n]
		if !live {
			mu.Lock()
			errs = append(errs, nodeError{truncate(n, 128), "the node holds connections but is not in the registry (stopped or unreachable)"})
			mu.Unlock()
			continue
		}
		wg.Go(func() {
			var res struct {
				Connections []connInfo `json:"connections"`
			}
			err := srv.askPeer(r.Context(), info, "/api/node/users/"+url.PathEscape(userID)+"/connections", &res)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, nodeError{n, err.Error()})
				return
			}
			conns = append(conns, res.Connections...)
		})
	}
	wg.Wait()
	slices.SortFunc(conns, func(a, b connInfo) int { return strings.Compare(a.Node+a.Since, b.Node+b.Since) })
	writeJSON(w, http.StatusOK, map[string]any{"userId": userID, "connections": conns, "errors": errs})
}

// askPeer GETs path from node n's server API into v, if the peer policy
// lets the API key go to the apiUrl n announced; a refusal is logged.
func (srv *server) askPeer(ctx context.Context, n nodeInfo, path string, v any) error {
	base, err := srv.peerPolicy.target(n.APIURL)
	if err != nil {
		srv.metrics.peersRefused.Inc()
		srv.hotLog.Warn().Str("node", truncate(n.ID, 128)).Err(err).Msg("peer apiUrl refused")
		return fmt.Errorf("node %s: %w", n.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.ID, err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.cfg.APIKey)
	resp, err := srv.peers.Do(req)
	if err != nil {
		if errors.Is(err, errPeerRefused) || errors.Is(err, errPeerRedirect) {
			srv.metrics.peersRefused.Inc()
			srv.hotLog.Warn().Str("node", truncate(n.ID, 128)).Err(err).Msg("peer apiUrl refused")
		}
		return fmt.Errorf("node %s: %w", n.ID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, peerMaxBody))
	if err != nil {
		return fmt.Errorf("node %s: read answer: %w", n.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("node %s answered %d: %s", n.ID, resp.StatusCode, truncate(string(body), 200))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("node %s: malformed answer: %w", n.ID, err)
	}
	return nil
}

// disconnectPayload is evAdminDisconnect's data: ConnID "" means every
// connection of the user.
type disconnectPayload struct {
	ConnID string `json:"connId,omitempty"`
}

func (srv *server) apiDisconnectUser(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "userId")
	if !ok {
		return
	}
	p := disconnectPayload{ConnID: r.PathValue("connId")}
	if p.ConnID != "" && !validID(p.ConnID) {
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "connId must be a connection id")
		return
	}
	data, _ := json.Marshal(p)
	if err := srv.cfg.Engines.Bus.Publish(r.Context(), bus.User(ids[0]), evAdminDisconnect, data); err != nil {
		apiEngineError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"userId": ids[0], "connId": p.ConnID})
}

// adminDisconnect closes the local connections an evAdminDisconnect names:
// a Socket.IO DISCONNECT per namespace (socket.io-client reports "io server
// disconnect" and does not reconnect by itself), then the transport.
func (srv *server) adminDisconnect(d bus.Delivery) {
	var p disconnectPayload
	if json.Unmarshal(d.Data, &p) != nil {
		return
	}
	for _, c := range srv.hub.userConns(d.Channel.ID) {
		if p.ConnID != "" && c.sid != p.ConnID {
			continue
		}
		c.sess.mu.Lock()
		nsps := c.sess.nsps
		c.sess.mu.Unlock()
		for _, ns := range []nsMask{nsChat, nsRoot} {
			if nsps&ns != 0 {
				nsp := srv.nsName(ns)
				c.send(textFrame(func(dst []byte) []byte { return socketio.AppendDisconnect(dst, nsp) }))
			}
		}
		c.closeAfter(closeFrame(1000, "disconnected by an operator"), reasonAdmin)
	}
}

func (srv *server) apiNodeEvents(w http.ResponseWriter, r *http.Request) {
	after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	if err != nil && r.URL.Query().Get("after") != "" {
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "after must be a sequence number")
		return
	}
	events, newest, sampledOut := srv.live.since(after)
	writeJSON(w, http.StatusOK, map[string]any{"node": srv.cfg.NodeID, "events": events, "newest": newest, "sampledOut": sampledOut})
}

// apiNodeEventsOf is GET /api/node/events of any live node, through this one.
func (srv *server) apiNodeEventsOf(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "nodeId")
	if !ok {
		return
	}
	if ids[0] == srv.cfg.NodeID {
		srv.apiNodeEvents(w, r)
		return
	}
	infos, err := srv.nodeInfos(r.Context())
	if err != nil {
		apiEngineError(w, err)
		return
	}
	i := slices.IndexFunc(infos, func(n nodeInfo) bool { return n.ID == ids[0] })
	if i < 0 {
		apiError(w, http.StatusNotFound, codeNotFound, "no live node "+ids[0])
		return
	}
	var res json.RawMessage
	if err := srv.askPeer(r.Context(), infos[i], "/api/node/events?"+url.Values{"after": {r.URL.Query().Get("after")}}.Encode(), &res); err != nil {
		apiError(w, http.StatusBadGateway, codeUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// historyEvent is one history entry in GET /api/chats/{chatId}.
type historyEvent struct {
	EventID string          `json:"eventId"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
}

func (srv *server) apiChatOverview(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "chatId")
	if !ok {
		return
	}
	chatID := ids[0]
	members, err := srv.cfg.Engines.Membership.Members(r.Context(), chatID)
	if err != nil {
		apiEngineError(w, err)
		return
	}
	slices.Sort(members)
	total := len(members)
	members = members[:min(total, consoleMaxMembers)]
	located, err := srv.cfg.Engines.Presence.Locate(r.Context(), members)
	if err != nil {
		apiEngineError(w, err)
		return
	}
	online := []map[string]any{}
	for _, m := range members {
		if es := located[m]; len(es) > 0 {
			online = append(online, map[string]any{"userId": m, "connections": len(es)})
		}
	}
	events, _, err := srv.cfg.Engines.Bus.Since(r.Context(), chatID, "", consoleHistory)
	if err != nil {
		apiEngineError(w, err)
		return
	}
	history := make([]historyEvent, 0, len(events))
	for _, e := range events {
		history = append(history, historyEvent{EventID: e.EventID, Event: e.Event, Data: e.Data})
	}
	if members == nil {
		members = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"chatId": chatID, "memberCount": total, "members": members,
		"truncated": total > len(members), "online": online, "history": history})
}

// devTokenTTL is the lifetime of a token minted by POST /api/dev/tokens.
const devTokenTTL = time.Hour

// apiDevToken mints a user token with the node's HS256 secret, for the
// console's test console; only under --dev.
func (srv *server) apiDevToken(w http.ResponseWriter, r *http.Request) {
	if !srv.cfg.Dev || srv.cfg.JWT.Alg != "HS256" {
		apiError(w, http.StatusForbidden, codeForbidden, "tokens are minted only by a node in --dev mode with an HS256 secret; paste a token instead")
		return
	}
	var p struct {
		UserID   string   `json:"userId"`
		Name     string   `json:"name"`
		Profiles []string `json:"profiles"`
	}
	if !decodeBody(w, r, &p) {
		return
	}
	if !validID(p.UserID) || !validName(p.Name) || len(p.Profiles) > maxProfiles ||
		slices.ContainsFunc(p.Profiles, func(s string) bool { return !validID(s) }) {
		apiError(w, http.StatusBadRequest, codeInvalidPayload, "userId and profiles must be ids, name UTF-8 without control characters")
		return
	}
	now := srv.cfg.Now()
	c := claims{Profiles: p.Profiles, Name: p.Name, RegisteredClaims: jwt.RegisteredClaims{
		Subject: p.UserID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(devTokenTTL)),
		Issuer: srv.cfg.JWT.Issuer}}
	if srv.cfg.JWT.Audience != "" {
		c.Audience = jwt.ClaimStrings{srv.cfg.JWT.Audience}
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(srv.cfg.JWT.Secret)
	if err != nil {
		apiError(w, http.StatusInternalServerError, codeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "userId": p.UserID, "expiresAt": timestamp(now.Add(devTokenTTL))})
}
