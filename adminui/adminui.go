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
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the console's policy: its own scripts, styles
// and images only (no inline script or style, no eval), API calls to its
// own origin, and WebSockets (the test console's socket.io connection to
// the node's public listener, on another port).
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console's files under prefix (e.g. "/admin/").
func Handler(prefix string) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
