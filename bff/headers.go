package bff

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Security headers (issue 9 §5). Every answer gets nosniff, no referrer
// and a refusal to be framed, and a Content-Security-Policy:
//
//   - JSON, redirects and plain text (/bff/*, /healthz, /readyz):
//     apiCSP, which allows nothing;
//   - the page and its files (WebDir): pageCSP, which allows this
//     origin's scripts, styles and images, the WASM client
//     ('wasm-unsafe-eval', which WebAssembly.instantiateStreaming needs and
//     which does not allow eval of JavaScript), fetches to this origin and
//     to Config.APIOrigins, and no inline script or style; or Config.CSP
//     when set. Pages also get Cross-Origin-Opener-Policy: same-origin;
//   - the BFF's own HTML error pages: errorPageCSP, which allows their one
//     inline style by its hash and nothing else.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Header values, as net/http stores them (the slices are never appended
// to: each has capacity 1).
var (
	hdrNosniff    = []string{"nosniff"}
	hdrNoReferrer = []string{"no-referrer"}
	hdrDeny       = []string{"DENY"}
	hdrAPICSP     = []string{apiCSP}
	hdrSameOrigin = []string{"same-origin"}
)

// pageCSP is the default policy of the page, allowing fetches to
// apiOrigins besides this origin.
func pageCSP(apiOrigins []string) string {
	connect := "'self'"
	if len(apiOrigins) > 0 {
		connect += " " + strings.Join(apiOrigins, " ")
	}
	return "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src " + connect +
		"; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'"
}

// errorPageCSP allows the error page's inline style, by hash.
var errorPageCSP = func() string {
	sum := sha256.Sum256([]byte(errorPageStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}()

// securityHeaders sets the headers every answer carries; the page and
// error-page handlers replace the CSP with their own.
func securityHeaders(c *gin.Context) {
	setSecurityHeaders(c.Writer.Header())
	c.Next()
}

// setSecurityHeaders sets securityHeaders' headers on h.
func setSecurityHeaders(h http.Header) {
	h["X-Content-Type-Options"] = hdrNosniff
	h["Referrer-Policy"] = hdrNoReferrer
	h["X-Frame-Options"] = hdrDeny
	h["Content-Security-Policy"] = hdrAPICSP
}

// pageHeaders marks an answer as (part of) the page.
func (s *Handler) pageHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h["Content-Security-Policy"] = s.pageCSP
	h["Cross-Origin-Opener-Policy"] = hdrSameOrigin
}
