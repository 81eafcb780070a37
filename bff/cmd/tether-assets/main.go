// Command tether-assets prepares the browser client's build outputs for
// bff/assets: after
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags='-s -w' -o web/dist/tether.wasm ./wasm
//
// run
//
//	go run ./bff/cmd/tether-assets [-goroot DIR] web/dist
//
// It renames tether.wasm to a content-hashed name, writes its gzip -9 and
// brotli q11 variants, copies wasm_exec.js from the GOROOT of the Go that
// built the binary (default: `go env GOROOT`), and writes manifest.json.
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
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: tether-assets [-goroot DIR] DIST_DIR")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *goroot); err != nil {
		fmt.Fprintln(os.Stderr, "tether-assets:", err)
		os.Exit(1)
	}
}

func run(dist, goroot string) error {
	if goroot == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("go env GOROOT: %w", err)
		}
		goroot = strings.TrimSpace(string(out))
	}
	m, err := assets.Build(dist, goroot)
	if err != nil {
		return err
	}
	fmt.Printf("%s/%s: %d bytes, gzip -9 %d, brotli q11 %d; wasm_exec.js from %s\n",
		dist, m.Wasm, m.Raw, m.Gzip, m.Brotli, m.GoVersion)
	return nil
}
