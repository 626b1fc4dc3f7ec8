// Package console serves the web console for marketing staff: static HTML,
// CSS and one JavaScript module, embedded in the binary, that talk to the
// admin API only. There is no build step and nothing is loaded from another
// origin, so the console works offline.
package console

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Prefix is the path the console is served under.
const Prefix = "/console"

//go:embed static
var static embed.FS

// contentSecurityPolicy allows the page nothing from another origin: the
// console must work without the network, and an injected script or style
// would not run.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler returns the handler of the console's files, for paths under
// Prefix: Prefix+"/" is the page, the others its assets.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Embedded files have no modification time: revalidate, so that a
		// new release is picked up at the next load.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// Register adds the console's route to r: GET Prefix+"/*path". The server
// redirects a request for Prefix itself to Prefix+"/".
func Register(r gin.IRoutes) {
	r.GET(Prefix+"/*path", gin.WrapH(Handler()))
}
