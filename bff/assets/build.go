package assets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/andybalholm/brotli"
)

// Files in the dist directory.
const (
	// BuildOutput is what `GOOS=js GOARCH=wasm go build -o` writes and Build
	// consumes.
	BuildOutput = "tether.wasm"
	// ManifestFile names the manifest Build writes and New reads.
	ManifestFile = "manifest.json"
	// WasmExec is the Go runtime's JS support, copied from GOROOT.
	WasmExec = "wasm_exec.js"
)

// ErrNoBuild is returned by Build without a build output and by New
// without a built dist directory; its text says what to run.
var ErrNoBuild = errors.New("assets: no WebAssembly build (run make web)")

// Manifest is dist/manifest.json: what Build produced.
type Manifest struct {
	Wasm      string `json:"wasm"`       // content-hashed name, e.g. "tether.3f9a1c2b4d5e6f70.wasm"
	WasmExec  string `json:"wasm_exec"`  // "wasm_exec.js"
	GoVersion string `json:"go_version"` // of the GOROOT wasm_exec.js came from
	Raw       int    `json:"raw"`        // sizes of the wasm in bytes
	Gzip      int    `json:"gzip"`
	Brotli    int    `json:"brotli"`
}

// Build prepares dist for New: it renames dist/tether.wasm to a
// content-hashed name, writes gzip -9 and brotli q11 variants next to it,
// removes the binaries of earlier builds, copies wasm_exec.js from
// goroot/lib/wasm (goroot must be that of the Go that built the wasm, as
// the two must match) with its compressed variants, and writes
// manifest.json.
func Build(dist, goroot string) (*Manifest, error) {
	out := filepath.Join(dist, BuildOutput)
	wasm, err := os.ReadFile(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("assets: %s: %w", out, ErrNoBuild)
	}
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	exec, err := os.ReadFile(filepath.Join(goroot, "lib", "wasm", WasmExec))
	if err != nil {
		return nil, fmt.Errorf("assets: wasm_exec.js of GOROOT %s: %w", goroot, err)
	}
	version, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil {
		return nil, fmt.Errorf("assets: version of GOROOT %s: %w", goroot, err)
	}
	sum := sha256.Sum256(wasm)
	m := &Manifest{
		Wasm:      "tether." + hex.EncodeToString(sum[:8]) + ".wasm",
		WasmExec:  WasmExec,
		GoVersion: strings.TrimSpace(strings.SplitN(string(version), "\n", 2)[0]),
		Raw:       len(wasm),
	}
	if err := removeStale(dist, m.Wasm); err != nil {
		return nil, err
	}
	if m.Gzip, m.Brotli, err = writeVariants(dist, m.Wasm, wasm); err != nil {
		return nil, err
	}
	if _, _, err := writeVariants(dist, WasmExec, exec); err != nil {
		return nil, err
	}
	if err := os.Remove(out); err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	if err := writeFile(filepath.Join(dist, ManifestFile), append(js, '\n')); err != nil {
		return nil, err
	}
	return m, nil
}

// removeStale deletes the binaries of earlier builds.
func removeStale(dist, keep string) error {
	entries, err := os.ReadDir(dist)
	if err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		base := strings.TrimSuffix(strings.TrimSuffix(name, ".br"), ".gz")
		if base != keep && base != BuildOutput && strings.HasPrefix(base, "tether.") && strings.HasSuffix(base, ".wasm") {
			if err := os.Remove(filepath.Join(dist, name)); err != nil {
				return fmt.Errorf("assets: %w", err)
			}
		}
	}
	return nil
}

// writeVariants writes name, name.gz and name.br and returns the
// compressed sizes.
func writeVariants(dist, name string, data []byte) (gz, br int, err error) {
	g, b, err := encode(name, data)
	if err != nil {
		return 0, 0, err
	}
	// The file first: a variant older than its file is not served.
	for _, v := range []struct {
		suffix  string
		content []byte
	}{{"", data}, {".gz", g}, {".br", b}} {
		if err := writeFile(filepath.Join(dist, name+v.suffix), v.content); err != nil {
			return 0, 0, err
		}
	}
	return len(g), len(b), nil
}

// encode compresses data with gzip -9 and brotli q11; name is for errors.
func encode(name string, data []byte) (gz, br []byte, err error) {
	var g bytes.Buffer
	gw, err := gzip.NewWriterLevel(&g, gzip.BestCompression)
	if err != nil {
		return nil, nil, fmt.Errorf("assets: %w", err)
	}
	if _, err := gw.Write(data); err != nil {
		return nil, nil, fmt.Errorf("assets: gzip %s: %w", name, err)
	}
	if err := gw.Close(); err != nil {
		return nil, nil, fmt.Errorf("assets: gzip %s: %w", name, err)
	}
	var b bytes.Buffer
	bw := brotli.NewWriterLevel(&b, brotli.BestCompression)
	if _, err := bw.Write(data); err != nil {
		return nil, nil, fmt.Errorf("assets: brotli %s: %w", name, err)
	}
	if err := bw.Close(); err != nil {
		return nil, nil, fmt.Errorf("assets: brotli %s: %w", name, err)
	}
	return g.Bytes(), b.Bytes(), nil
}

// writeFile replaces path atomically.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: ENOENT, ignored
	w := bufio.NewWriter(tmp)
	if _, err := w.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("assets: write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("assets: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("assets: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("assets: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	return nil
}

// minCompress is the smallest file Compress writes variants for: below
// it, the saving does not pay for the Content-Encoding round.
const minCompress = 1024

// Compressed counts what Compress did.
type Compressed struct {
	Files        int   // files given variants
	Raw          int64 // their sizes
	Gzip, Brotli int64 // their variants' sizes
}

// Compress writes gzip -9 and brotli q11 variants (name.gz, name.br) next
// to every file under dir that gains from them: a compressible type (see
// New), at least 1 KiB, not an HTML page (served with substitutions, not
// from a variant) and not a dot file. A variant that would not be smaller
// is not written, and an old one is removed. Run it on a bundler's output
// (Vite's dist/) that the BFF serves.
func Compress(dir string) (Compressed, error) {
	var sum Compressed
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") && p != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || filepath.Ext(name) == ".html" {
			return nil
		}
		ctype, ok := contentType(name)
		if !ok || !compressible(ctype) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(data) < minCompress {
			return nil
		}
		gz, br, err := compressOne(p, data)
		if err != nil {
			return err
		}
		sum.Files++
		sum.Raw += int64(len(data))
		sum.Gzip += int64(gz)
		sum.Brotli += int64(br)
		return nil
	})
	if err != nil {
		return sum, fmt.Errorf("assets: compress %s: %w", dir, err)
	}
	return sum, nil
}

// compressOne writes path.gz and path.br when smaller than data, and
// returns the size each encoding is served with.
func compressOne(path string, data []byte) (gz, br int, err error) {
	g, b, err := encode(path, data)
	if err != nil {
		return 0, 0, err
	}
	sizes := [2]int{}
	for i, v := range []struct {
		suffix string
		data   []byte
	}{{".gz", g}, {".br", b}} {
		if len(v.data) >= len(data) {
			if err := os.Remove(path + v.suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return 0, 0, err
			}
			sizes[i] = len(data)
			continue
		}
		if err := writeFile(path+v.suffix, v.data); err != nil {
			return 0, 0, err
		}
		sizes[i] = len(v.data)
	}
	return sizes[0], sizes[1], nil
}
