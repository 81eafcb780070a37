// Command gofullstack runs the Go full-stack example (package app): a Gin
// application with Tether under /auth, a page rendered on the server with
// the API's data, and a Go WebAssembly UI calling the API from the
// browser. `make run-gofullstack` builds the UI into -dist and runs it;
// Ctrl-C stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/web/examples/gofullstack/app"
)

func main() {
	var o app.Options
	flag.StringVar(&o.Addr, "addr", "127.0.0.1:8081", "the application's address")
	flag.StringVar(&o.DevAddr, "dev-addr", "127.0.0.1:9091", "the dev provider's address (sign-in and the API)")
	flag.StringVar(&o.Dist, "dist", "web/examples/gofullstack/dist", "the directory with ui.wasm and wasm_exec.js")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.Start(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gofullstack:", err)
		os.Exit(1)
	}
	fmt.Printf("gofullstack: open %s (sign in as alice or bob; the API is %s/api/me)\n", a.URL, a.DevURL)
	select {
	case <-ctx.Done():
	case err := <-a.Err():
		fmt.Fprintln(os.Stderr, "gofullstack:", err)
	}
	if err := a.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "gofullstack:", err)
		os.Exit(1)
	}
}
