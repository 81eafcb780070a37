//go:build !js

package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Budget is the most the client may weigh after `gzip -9`, in bytes
// (620 KB). The Go runtime alone (a syscall/js program that does nothing)
// is about 569,700 bytes. The test runs GNU gzip, the tool the budget is
// stated in; Go's compress/gzip comes out about 0.6% larger and is logged
// too. (`make web` writes the brotli variant; its size is in web/dist.)
const Budget = 620_000

// forbidden are packages the binary must not depend on, with what each
// was measured to cost (gzip -9) on top of the runtime.
var forbidden = map[string]string{
	"net/http":      "+2.2 MB: the whole Transport and TLS stack",
	"encoding/json": "+335 KB: use the browser's JSON.parse",
	"fmt":           "+170 KB",
	"time":          "+55 KB for its init alone: use Date.now and setTimeout",
	"context":       "+100 KB with time",
	"reflect":       "+5 KB (tests use shared/wire/wiretest for reflection)",
	"strconv":       "+12 KB with Quote's Unicode tables",
}

// wasmEnv is the environment of a js/wasm build.
func wasmEnv() []string {
	return append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
}

func TestSize(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tether.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Env = wasmEnv()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var goGz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&goGz, gzip.BestCompression)
	zw.Write(raw)
	zw.Close()
	gz, err := exec.Command("gzip", "-9", "-c", out).Output()
	if err != nil {
		t.Fatalf("gzip -9: %v (gzip is in every Debian install: apt-get install -y gzip)", err)
	}
	t.Logf("tether.wasm: raw %d, gzip -9 %d (budget %d), Go compress/gzip level 9 %d", len(raw), len(gz), Budget, goGz.Len())
	if len(gz) > Budget {
		t.Errorf("tether.wasm is %d bytes after gzip -9; the budget is %d", len(gz), Budget)
	}
}

func TestDeps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = wasmEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || !strings.Contains(string(out), "syscall/js") {
		t.Fatalf("go list -deps gave %q; want the js/wasm dependencies", deps)
	}
	for _, d := range deps {
		if why, ok := forbidden[d]; ok {
			t.Errorf("the wasm build depends on %s (%s)", d, why)
		}
	}
}
