package bff

import "net/http"

// newWebHandler serves the page and the WASM client from dir.
func newWebHandler(dir string) (http.Handler, error) {
	return http.FileServer(http.Dir(dir)), nil
}
