// Command tether-demo runs the whole demo in one process, with no
// configuration: the dev provider (a local OAuth server and sample API),
// the BFF with an embedded Redis, and the page in web/ (package bff/demo).
// `make run` builds the page and starts it; Ctrl-C stops everything.
// `tether-demo -h` lists the variables it reads (demo.EnvHelp), all
// optional. Unless TETHER_VAULT_KEY and TETHER_SESSION_KEYS are set, the
// demo makes throw-away keys and says so once.
//
// SIGINT (Ctrl-C) or SIGTERM shuts everything down; the exit status is 0
// when that went cleanly.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/demo"
)

func main() {
	flag.Usage = func() { fmt.Fprint(flag.CommandLine.Output(), "usage: tether-demo\n\n"+demo.EnvHelp()) }
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tether-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	gin.SetMode(gin.ReleaseMode)
	log := bff.NewLogger(getenv("TETHER_LOG_FORMAT"), getenv("TETHER_LOG_LEVEL"), stderr)
	d, err := demo.Start(ctx, demo.Options{
		Addr:   getenv("TETHER_ADDR"),
		WebDir: getenv("TETHER_WEB_DIR"),
		Getenv: getenv,
		Logger: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n  Tether demo: open %s\n  (dev provider at %s; Ctrl-C stops both)\n\n", d.URL, d.DevURL)
	select {
	case <-ctx.Done():
	case err = <-d.Err():
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
