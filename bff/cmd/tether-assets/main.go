// Command tether-assets prepares the browser client's build outputs for
// bff/assets and npm. After
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' -o web/dist/tether.wasm ./wasm
//
// `tether-assets [-goroot DIR] web/dist` renames tether.wasm to a
// content-hashed name, writes its gzip -9 and brotli q11 variants, copies
// wasm_exec.js from the GOROOT of the Go that built the binary (default:
// `go env GOROOT`), and writes manifest.json (assets.Build).
//
// `tether-assets -npm OUT [-web web] web/dist` then lays out the npm
// package in OUT (assets.Package); `npm pack` makes the tarball.
//
// `tether-assets -compress DIR` writes .gz and .br variants next to the
// files of a built single-page app (Vite's dist/) that the BFF serves
// (assets.Compress).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/tetherauth/tether/bff/assets"
)

func main() {
	goroot := flag.String("goroot", "", "GOROOT of the Go that built the wasm (default: go env GOROOT)")
	npm := flag.String("npm", "", "lay out the npm package in this directory, from DIST")
	web := flag.String("web", "web", "with -npm: the web directory (npm/ and tether.js)")
	compress := flag.Bool("compress", false, "write .gz and .br variants of the files under DIR")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: tether-assets [-goroot DIR] DIST | -npm OUT [-web DIR] DIST | -compress DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *goroot, *npm, *web, *compress); err != nil {
		fmt.Fprintln(os.Stderr, "tether-assets:", err)
		os.Exit(1)
	}
}

func run(dir, goroot, npm, web string, compress bool) error {
	switch {
	case compress:
		c, err := assets.Compress(dir)
		if err == nil {
			fmt.Printf("%s: %d files, %d bytes, gzip -9 %d, brotli q11 %d\n", dir, c.Files, c.Raw, c.Gzip, c.Brotli)
		}
		return err
	case npm != "":
		m, err := assets.Package(web, dir, npm)
		if err == nil {
			fmt.Printf("%s: the npm package (%s, wasm_exec.js from %s)\n", npm, assets.PackageWasm, m.GoVersion)
		}
		return err
	}
	if goroot == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("go env GOROOT: %w", err)
		}
		goroot = strings.TrimSpace(string(out))
	}
	m, err := assets.Build(dir, goroot)
	if err != nil {
		return err
	}
	fmt.Printf("%s/%s: %d bytes, gzip -9 %d, brotli q11 %d; wasm_exec.js from %s\n",
		dir, m.Wasm, m.Raw, m.Gzip, m.Brotli, m.GoVersion)
	return nil
}
