// Package assets serves the browser client: the static files of web/
// (index.html, tether.js, the demo's CSS and JS) and the build outputs in
// web/dist/ that Build prepares (the content-hashed tether.<hash>.wasm with
// its pre-compressed variants, wasm_exec.js and manifest.json).
//
// The page learns the hashed name in one of two ways: every .html file is
// served with the placeholder {{TETHER_WASM}} replaced by the binary's
// path relative to that page (index.html puts it in the data-wasm
// attribute of tether.js's script tag), and dist/manifest.json names it.
//
// Caching: the hashed binary is immutable for a year; everything else is
// "no-cache" (revalidated with Last-Modified or ETag). Pre-compressed
// variants (.br, .gz) are chosen by Accept-Encoding. Only files with a
// known extension are served, never a directory listing, a dot file or
// anything outside the web directory.
package assets

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// contentTypes lists the extensions served; any other file is a 404.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
	".wasm": "application/wasm",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".txt":  "text/plain; charset=utf-8",
}

// Cache-Control values.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheRevalid   = "no-cache"
)

// Option configures New.
type Option func(*options)

type options struct {
	dist string
}

// WithDist serves the build outputs from dir instead of webDir/dist; they
// still appear under /dist/ in URLs.
func WithDist(dir string) Option {
	return func(o *options) { o.dist = dir }
}

// handler serves the files.
type handler struct {
	web, dist *os.Root
	manifest  Manifest
}

// New returns a handler for GET and HEAD requests of the files in webDir
// and its dist directory. It fails, saying to run make web, when dist has
// no manifest or the binary it names.
func New(webDir string, opts ...Option) (http.Handler, error) {
	o := options{dist: filepath.Join(webDir, "dist")}
	for _, opt := range opts {
		opt(&o)
	}
	web, err := os.OpenRoot(webDir)
	if err != nil {
		return nil, fmt.Errorf("assets: web directory: %w", err)
	}
	dist, err := os.OpenRoot(o.dist)
	if err != nil {
		web.Close()
		return nil, fmt.Errorf("assets: %s: %w", o.dist, ErrNoBuild)
	}
	h := &handler{web: web, dist: dist}
	if err := h.loadManifest(o.dist); err != nil {
		web.Close()
		dist.Close()
		return nil, err
	}
	return h, nil
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

// ServeHTTP serves one file.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := cleanName(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctype := contentTypes[path.Ext(name)]
	root, hashed := h.web, false
	if rest, inDist := strings.CutPrefix(name, distPath); inDist {
		root, name, hashed = h.dist, rest, rest == h.manifest.Wasm
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
		h.serveHTML(w, r, name)
		return
	}
	f, info, enc := h.open(root, name, root == h.dist, r.Header.Get("Accept-Encoding"))
	if f == nil {
		hdr.Del("Content-Type")
		hdr.Del("Cache-Control")
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	if root == h.dist {
		hdr.Add("Vary", "Accept-Encoding")
	}
	if enc != "" {
		hdr.Set("Content-Encoding", enc)
	}
	if hashed {
		hdr.Set("ETag", `"`+strings.TrimSuffix(strings.TrimPrefix(name, "tether."), ".wasm")+encSuffix(enc)+`"`)
	}
	http.ServeContent(w, r, name, info.ModTime(), f)
}

// cleanName turns a URL path into a file name relative to the web
// directory, or reports false for anything that is not a plain file path
// with a served extension: "..", empty or dot segments, dot files,
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
	if _, ok := contentTypes[path.Ext(name)]; !ok {
		return "", false
	}
	return name, true
}

// open opens a regular file, or its best pre-compressed variant when
// variants is set and the client accepts one. It returns a nil file when
// there is none.
func (h *handler) open(root *os.Root, name string, variants bool, accept string) (*os.File, fs.FileInfo, string) {
	if variants {
		for _, enc := range []string{"br", "gzip"} {
			if !accepts(accept, enc) {
				continue
			}
			if f, info := openFile(root, name+encSuffix(enc)); f != nil {
				return f, info, enc
			}
		}
	}
	f, info := openFile(root, name)
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

// serveHTML serves an HTML file with the placeholder replaced. Its ETag is
// the hash of what is sent, as the binary's name can change while the file
// does not.
func (h *handler) serveHTML(w http.ResponseWriter, r *http.Request, name string) {
	f, _ := openFile(h.web, name)
	if f == nil {
		w.Header().Del("Content-Type")
		w.Header().Del("Cache-Control")
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxHTML+1))
	if err != nil || len(data) > maxHTML {
		http.Error(w, "cannot read "+name, http.StatusInternalServerError)
		return
	}
	rel := strings.Repeat("../", strings.Count(name, "/")) + distPath + h.manifest.Wasm
	data = bytes.ReplaceAll(data, []byte(Placeholder), []byte(rel))
	sum := sha256.Sum256(data)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}
