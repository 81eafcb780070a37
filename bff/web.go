package bff

import (
	"net/http"

	"github.com/tetherauth/tether/bff/assets"
	"github.com/tetherauth/tether/shared/wire"
)

// reservedPaths are the BFF's own, besides its base path (cfg.BasePath,
// /bff by default): never answered by the web directory's history
// fallback, even where no route matches (/bff/unknown is a 404 in the
// contract's JSON).
var reservedPaths = []string{"/healthz", "/readyz", "/metrics"}

// newWebHandler serves cfg.WebDir: the page and the WASM client (built by
// `make web` into WebDir/dist), or a built single-page app, whose routes
// get cfg.WebFallback.
func newWebHandler(cfg Config) (http.Handler, error) {
	var opts []assets.Option
	if cfg.WebFallback != "" {
		base := cfg.BasePath
		if base == "" {
			base = wire.BasePath
		}
		opts = append(opts, assets.WithFallback(cfg.WebFallback, append([]string{base}, reservedPaths...)...))
	}
	return assets.New(cfg.WebDir, opts...)
}
