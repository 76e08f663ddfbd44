// Package adminui is the admin console: a single page of plain HTML, CSS
// and JavaScript embedded in the binary (no build step, no external
// assets), served by the node under /admin/ on its admin listener. The page
// calls the node's server API with the API key the operator types in (kept
// in sessionStorage, never in a URL).
//
// static/socket.io.min.js is the browser bundle of the socket.io-client npm
// package at the version e2e/package-lock.json pins, copied unchanged (the
// test console connects as a user the way the apps do); a test checks it
// still matches the installed package.
package adminui

import (
	"embed"
	"io/fs"
	"net/http"
	"regexp"
)

//go:embed static
var static embed.FS

// Policy is the console's Content-Security-Policy: its own scripts,
// styles and images only (no inline script or style, no eval), API calls to
// its own origin, and WebSocket connections to sockets only: the test
// console's socket.io connection to the node's public listener, another
// origin than the page's (another port). Each socket is a ws:// or wss://
// origin (scheme, host, optional port); anything else is left out, so no
// value can widen the policy or add a directive.
func Policy(sockets ...string) string {
	connect := "'self'"
	for _, s := range sockets {
		if socketOrigin.MatchString(s) {
			connect += " " + s
		}
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src " + connect + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// socketOrigin is what Policy accepts as a socket: a host in the grammar of
// a CSP host-source (dot-separated labels of letters, digits and '-': an
// IPv4 address fits, an IPv6 address or a '_' does not, and browsers drop
// such a source), and a port.
var socketOrigin = regexp.MustCompile(`^wss?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?$`)

// Handler serves the console's files under prefix (e.g. "/admin/").
// sockets, when not nil, gives the WebSocket origins the page loaded by r
// may connect to (Policy's).
func Handler(prefix string, sockets func(r *http.Request) []string) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		if sockets != nil {
			allowed = sockets(r)
		}
		h := w.Header()
		h.Set("Content-Security-Policy", Policy(allowed...))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
