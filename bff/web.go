package bff

import (
	"net/http"

	"github.com/tetherauth/tether/bff/assets"
)

// newWebHandler serves the page and the WASM client from dir (built by
// `make web` into dir/dist).
func newWebHandler(dir string) (http.Handler, error) {
	return assets.New(dir)
}
