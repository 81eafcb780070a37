package assets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The npm package's files: from the web directory's npm/ (package.json,
// the ES module, its types, the README), tether.js from the web directory,
// and from dist the wasm (under an unhashed name: a bundler fingerprints
// it) and wasm_exec.js of the Go that built it.
const (
	// PackageWasm is the binary's name in the npm package; the ES module
	// loads it as new URL("./tether.wasm", import.meta.url).
	PackageWasm = "tether.wasm"
	// wasmURLExpr is how the ES module must name the binary for bundlers
	// to emit it.
	wasmURLExpr = `new URL("./` + PackageWasm + `", import.meta.url)`
)

// packageSources are the files copied from the web directory's npm/.
var packageSources = []string{"package.json", "index.js", "index.d.ts", "README.md"}

// Package writes the npm package of the browser client into out (made
// anew): web/npm's sources, web/tether.js, and Build's outputs in dist
// (the wasm as tether.wasm, wasm_exec.js). package.json gains a "tether"
// member naming the Go version the binary and wasm_exec.js come from. It
// returns dist's manifest. `npm pack` of out is the package.
func Package(webDir, dist, out string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dist, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("assets: %s: %w", filepath.Join(dist, ManifestFile), ErrNoBuild)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("assets: %s: %w", filepath.Join(dist, ManifestFile), err)
	}
	if m.Wasm == "" || m.WasmExec == "" {
		return nil, fmt.Errorf("assets: %s names no wasm: %w", filepath.Join(dist, ManifestFile), ErrNoBuild)
	}
	src := filepath.Join(webDir, "npm")
	files := map[string][]byte{}
	for _, name := range packageSources {
		if files[name], err = os.ReadFile(filepath.Join(src, name)); err != nil {
			return nil, fmt.Errorf("assets: npm package: %w", err)
		}
	}
	if !bytes.Contains(files["index.js"], []byte(wasmURLExpr)) {
		return nil, fmt.Errorf("assets: %s must load the wasm as %s, for bundlers to emit it", filepath.Join(src, "index.js"), wasmURLExpr)
	}
	if files["package.json"], err = stampPackage(files["package.json"], m.GoVersion); err != nil {
		return nil, err
	}
	for name, from := range map[string]string{
		"tether.js": filepath.Join(webDir, "tether.js"),
		PackageWasm: filepath.Join(dist, m.Wasm),
		WasmExec:    filepath.Join(dist, m.WasmExec),
	} {
		if files[name], err = os.ReadFile(from); err != nil {
			return nil, fmt.Errorf("assets: npm package: %w", err)
		}
	}
	if err := os.RemoveAll(out); err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	for name, content := range files {
		if err := writeFile(filepath.Join(out, name), content); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// stampPackage adds {"tether": {"go": version}} to package.json, keeping
// the order of its members.
func stampPackage(pkg []byte, goVersion string) ([]byte, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(pkg, &probe); err != nil {
		return nil, fmt.Errorf("assets: npm package.json: %w", err)
	}
	if _, ok := probe["tether"]; ok {
		return nil, errors.New(`assets: npm package.json has a "tether" member already`)
	}
	end := bytes.LastIndexByte(pkg, '}')
	if end < 0 {
		return nil, errors.New("assets: npm package.json is not an object")
	}
	stamp, _ := json.Marshal(goVersion)
	body := bytes.TrimRight(pkg[:end], " \t\r\n")
	out := append(append([]byte{}, body...), []byte(",\n  \"tether\": {\n    \"go\": "+string(stamp)+"\n  }\n}\n")...)
	if !json.Valid(out) {
		return nil, errors.New("assets: npm package.json: cannot add the Go version")
	}
	return out, nil
}
