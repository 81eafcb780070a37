// Package assets serves a web directory: the demo page with the browser
// client that `make web` builds into web/dist/ (Build prepares it: the
// content-hashed tether.<hash>.wasm with its pre-compressed variants,
// wasm_exec.js and manifest.json), or a single-page app built by a bundler
// (Vite's dist/), which carries the client's wasm itself.
//
// With a Tether build (dir/dist/manifest.json, or WithDist), the page
// learns the binary's hashed name in one of two ways: every .html file is
// served with the placeholder {{TETHER_WASM}} replaced by the binary's
// path relative to that page (index.html puts it in the data-wasm
// attribute of tether.js's script tag), and dist/manifest.json names it.
// Without one, a page that holds the placeholder is an error at New.
//
// Content types come from a built-in table of the web's file types
// (deterministic), then the mime package; a few extensions are never
// served (source code, keys, the .br and .gz variants by name), nor is a
// file of unknown type, a directory listing, a dot file or anything
// outside the directory.
//
// Caching: a content-hashed name (tether.<hash>.wasm, Vite's
// assets/index-<hash>.js; see hashedName) is immutable for a year;
// everything else, HTML always, is "no-cache" (revalidated with
// Last-Modified or ETag). A file's pre-compressed variants (name.br,
// name.gz next to it: Build and Compress write them) are chosen by
// Accept-Encoding.
//
// History fallback (WithFallback): a single-page app's routes, such as
// /settings/profile, are paths with no file behind them; for a GET or
// HEAD that accepts text/html, whose last segment has no extension and
// which is not under a reserved prefix, the handler serves the fallback
// page (index.html) with status 200. A missing /app.js stays a 404.
package assets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Placeholder is replaced, in every .html file served, by the path of the
// content-hashed binary relative to that page.
const Placeholder = "{{TETHER_WASM}}"

// distPath is where the dist directory appears in URLs.
const distPath = "dist/"

// maxHTML caps the size of an HTML file read for substitution.
const maxHTML = 4 << 20

// Cache-Control values.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheRevalid   = "no-cache"
)

// ErrFallback is returned by New when the fallback page is not an HTML
// file of the web directory.
var ErrFallback = errors.New("assets: the fallback page must be an .html file in the web directory")

// Option configures New.
type Option func(*options)

type options struct {
	dist     string
	needDist bool
	fallback string
	reserved []string
}

// WithDist serves the build outputs from dir instead of webDir/dist; they
// still appear under /dist/ in URLs, and New fails without them.
func WithDist(dir string) Option {
	return func(o *options) { o.dist, o.needDist = dir, true }
}

// WithFallback serves page (a path relative to the web directory, such as
// index.html) for the routes of a single-page app: see the package doc.
// Paths equal to or under one of reserved ("/bff", "/healthz") never get
// it.
func WithFallback(page string, reserved ...string) Option {
	return func(o *options) { o.fallback, o.reserved = page, reserved }
}

// handler serves the files.
type handler struct {
	web      *os.Root
	dist     *os.Root // nil without a Tether build
	manifest Manifest
	fallback string
	reserved []string
}

// New returns a handler for GET and HEAD requests of the files in webDir
// and, when it has a Tether build, of its dist directory. It fails, saying
// to run make web, when webDir/dist has no manifest (or lacks a file it
// names) but the web directory's index.html or fallback page holds the
// placeholder, or WithDist was given.
func New(webDir string, opts ...Option) (http.Handler, error) {
	o := options{dist: filepath.Join(webDir, "dist")}
	for _, opt := range opts {
		opt(&o)
	}
	web, err := os.OpenRoot(webDir)
	if err != nil {
		return nil, fmt.Errorf("assets: web directory: %w", err)
	}
	h := &handler{web: web, reserved: o.reserved}
	if o.fallback != "" {
		name, ok := cleanName("/" + o.fallback)
		f, _ := openFile(web, name)
		if f != nil {
			f.Close()
		}
		if !ok || f == nil || path.Ext(name) != ".html" {
			web.Close()
			return nil, fmt.Errorf("%w: %q", ErrFallback, o.fallback)
		}
		h.fallback = name
	}
	if err := h.openDist(o); err != nil {
		web.Close()
		return nil, err
	}
	return h, nil
}

// openDist opens the Tether build when there is one or one is needed.
func (h *handler) openDist(o options) error {
	_, statErr := os.Stat(filepath.Join(o.dist, ManifestFile))
	if statErr != nil && !o.needDist && !h.needsBuild() {
		return nil // a web directory that does without the Tether build
	}
	dist, err := os.OpenRoot(o.dist)
	if err != nil {
		return fmt.Errorf("assets: %s: %w", o.dist, ErrNoBuild)
	}
	h.dist = dist
	if err := h.loadManifest(o.dist); err != nil {
		dist.Close()
		h.dist = nil
		return err
	}
	return nil
}

// needsBuild reports whether index.html or the fallback page holds the
// placeholder: a page that loads the client `make web` builds.
func (h *handler) needsBuild() bool {
	for _, name := range []string{"index.html", h.fallback} {
		if name == "" {
			continue
		}
		if data, err := h.web.ReadFile(name); err == nil && bytes.Contains(data, []byte(Placeholder)) {
			return true
		}
	}
	return false
}

// loadManifest reads the manifest and checks the files it names.
func (h *handler) loadManifest(dir string) error {
	data, err := h.dist.ReadFile(ManifestFile)
	if err != nil {
		return fmt.Errorf("assets: %s: %w", filepath.Join(dir, ManifestFile), ErrNoBuild)
	}
	if err := json.Unmarshal(data, &h.manifest); err != nil {
		return fmt.Errorf("assets: %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	m := h.manifest
	if m.Wasm == "" || m.WasmExec == "" || strings.ContainsAny(m.Wasm+m.WasmExec, `/\`) {
		return fmt.Errorf("assets: %s names no wasm: %w", filepath.Join(dir, ManifestFile), ErrNoBuild)
	}
	for _, name := range []string{m.Wasm, m.WasmExec} {
		if _, err := h.dist.Stat(name); err != nil {
			return fmt.Errorf("assets: %s: %w", filepath.Join(dir, name), ErrNoBuild)
		}
	}
	return nil
}

// ServeHTTP serves one file, or the fallback page for a route.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	route := false
	if h.routeShaped(r.URL.Path) {
		// The answer depends on Accept, a 404 included: a cache that kept
		// fetch's 404 must not give it to a navigation.
		w.Header().Add("Vary", "Accept")
		route = acceptsHTML(r.Header.Values("Accept"))
	}
	name, ok := cleanName(r.URL.Path)
	ctype, known := contentType(name)
	if !ok || !known {
		h.notFound(w, r, route)
		return
	}
	root, hashed := h.web, hashedName(name)
	if rest, inDist := strings.CutPrefix(name, distPath); inDist && h.dist != nil {
		root, name, hashed = h.dist, rest, rest == h.manifest.Wasm
	}
	if path.Ext(name) == ".html" {
		hashed = false // a page's URL is its name: never immutable
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Type", ctype)
	if hashed {
		hdr.Set("Cache-Control", cacheImmutable)
	} else {
		hdr.Set("Cache-Control", cacheRevalid)
	}
	if root == h.web && path.Ext(name) == ".html" {
		if !h.serveHTML(w, r, name, false) {
			h.notFound(w, r, route)
		}
		return
	}
	f, info, enc := h.open(root, name, compressible(ctype), hashed, r.Header.Get("Accept-Encoding"))
	if f == nil {
		h.notFound(w, r, route)
		return
	}
	defer f.Close()
	if compressible(ctype) {
		hdr.Add("Vary", "Accept-Encoding")
	}
	if enc != "" {
		hdr.Set("Content-Encoding", enc)
	}
	if root == h.dist && name == h.manifest.Wasm {
		hdr.Set("ETag", `"`+strings.TrimSuffix(strings.TrimPrefix(name, "tether."), ".wasm")+encSuffix(enc)+`"`)
	}
	http.ServeContent(w, r, name, info.ModTime(), f)
}

// routeShaped reports whether a request for p that accepts text/html
// (a navigation) gets the fallback page when no file answers: with a
// fallback, for a clean path whose last segment has no extension, outside
// the reserved prefixes. The caller checks the method (GET or HEAD).
func (h *handler) routeShaped(p string) bool {
	if h.fallback == "" {
		return false
	}
	if _, clean := cleanName(p); !clean || strings.Contains(path.Base(p), ".") && !strings.HasSuffix(p, "/") {
		return false
	}
	for _, prefix := range h.reserved {
		prefix = strings.TrimSuffix(prefix, "/")
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return false
		}
	}
	return true
}

// notFound answers 404, or the fallback page for a route.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request, route bool) {
	hdr := w.Header()
	if route {
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Content-Type", webTypes[".html"])
		hdr.Set("Cache-Control", cacheRevalid)
		if h.serveHTML(w, r, h.fallback, true) {
			return
		}
	}
	hdr.Del("Content-Type")
	hdr.Del("Cache-Control")
	http.NotFound(w, r)
}

// acceptsHTML reports whether Accept headers list text/html with a
// q-value above zero (a browser's navigation does; fetch's */* does not).
func acceptsHTML(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(name), "text/html") && qPositive(params) {
				return true
			}
		}
	}
	return false
}

// cleanName turns a URL path into a file name relative to the web
// directory ("/" and "/x/" name index.html), or reports false for anything
// that is not a plain file path: "..", empty or dot segments, dot files,
// backslashes.
func cleanName(urlPath string) (string, bool) {
	if !strings.HasPrefix(urlPath, "/") {
		return "", false
	}
	name := urlPath[1:]
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	if !fs.ValidPath(name) || strings.ContainsAny(name, "\\\x00") {
		return "", false
	}
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") {
			return "", false
		}
	}
	return name, true
}

// open opens a regular file, or its best pre-compressed variant when
// variants is set and the client accepts one. A variant counts only next
// to its file and, unless the name is content-hashed (its content cannot
// change), when it is not older than the file (an edited file outruns a
// stale variant). It returns a nil file when there is no such file.
func (h *handler) open(root *os.Root, name string, variants, hashed bool, accept string) (*os.File, fs.FileInfo, string) {
	f, info := openFile(root, name)
	if f == nil || !variants {
		return f, info, ""
	}
	for _, enc := range []string{"br", "gzip"} {
		if !accepts(accept, enc) {
			continue
		}
		if vf, vinfo := openFile(root, name+encSuffix(enc)); vf != nil {
			if hashed || !vinfo.ModTime().Before(info.ModTime()) {
				f.Close()
				return vf, vinfo, enc
			}
			vf.Close()
		}
	}
	return f, info, ""
}

// openFile opens a regular file; nil if it is missing or not regular.
func openFile(root *os.Root, name string) (*os.File, fs.FileInfo) {
	f, err := root.Open(name)
	if err != nil {
		return nil, nil
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, nil
	}
	return f, info
}

// encSuffix is the file suffix of a content coding.
func encSuffix(enc string) string {
	switch enc {
	case "br":
		return ".br"
	case "gzip":
		return ".gz"
	}
	return ""
}

// accepts reports whether an Accept-Encoding header allows coding: listed,
// or covered by "*", with a q-value above zero.
func accepts(header, coding string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		ok := qPositive(params)
		switch name {
		case coding:
			return ok
		case "*":
			star = ok
		}
	}
	return star
}

// qPositive reports whether the parameters of an Accept-Encoding element
// leave its q-value above zero.
func qPositive(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimSpace(v)
			return strings.Trim(v, "0.") != "" // "0", "0.0", "0.000" are zero
		}
	}
	return true
}

// serveHTML serves an HTML file with the placeholder replaced by the
// binary's path: relative to the page, or from the root for the fallback
// page (served at any depth). Its ETag is the hash of what is sent, as
// the binary's name can change while the file does not. It reports false
// when there is no such file.
func (h *handler) serveHTML(w http.ResponseWriter, r *http.Request, name string, fromRoot bool) bool {
	f, _ := openFile(h.web, name)
	if f == nil {
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxHTML+1))
	if err != nil || len(data) > maxHTML {
		http.Error(w, "cannot read "+name, http.StatusInternalServerError)
		return true
	}
	if h.dist != nil {
		rel := strings.Repeat("../", strings.Count(name, "/")) + distPath + h.manifest.Wasm
		if fromRoot {
			rel = "/" + distPath + h.manifest.Wasm
		}
		data = bytes.ReplaceAll(data, []byte(Placeholder), []byte(rel))
	}
	sum := sha256.Sum256(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	return true
}
