package bff

import (
	"net/http"

	"github.com/tetherauth/tether/bff/assets"
	"github.com/tetherauth/tether/shared/wire"
)

// reservedPaths are the BFF's own: never answered by the web directory's
// history fallback, even where no route matches (/bff/unknown is a 404 in
// the contract's JSON).
var reservedPaths = []string{wire.BasePath, "/healthz", "/readyz", "/metrics"}

// newWebHandler serves cfg.WebDir: the page and the WASM client (built by
// `make web` into WebDir/dist), or a built single-page app, whose routes
// get cfg.WebFallback.
func newWebHandler(cfg Config) (http.Handler, error) {
	var opts []assets.Option
	if cfg.WebFallback != "" {
		opts = append(opts, assets.WithFallback(cfg.WebFallback, reservedPaths...))
	}
	return assets.New(cfg.WebDir, opts...)
}
