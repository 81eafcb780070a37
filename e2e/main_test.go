// Package e2e holds the whole-stack tests: the demo (dev provider, BFF with
// its embedded Redis, the page in web/) started in-process by bff/demo, and
// driven in headless Chromium through the DevTools protocol (chromedp).
// They need /usr/bin/chromium (apt-get install -y chromium).
//
// One Chromium serves the whole package; every test gets a fresh browser
// context (its own cookies, storage, BroadcastChannel and locks) and its own
// demo, so that the dev provider's counters are the test's alone.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/assets"
)

// chromiumPath is the browser the tests drive.
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds one browser step (a navigation, an evaluation, a click).
const stepTimeout = 30 * time.Second

var (
	// repoRoot is the module's root directory.
	repoRoot string

	browserOnce sync.Once
	browserCtx  context.Context // the shared browser; nil if it failed to start
	browserErr  error
	browserStop = func() {}
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode) // no route listing per demo
	code := 1
	func() {
		defer func() { browserStop() }()
		if err := setup(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return
		}
		code = m.Run()
	}()
	os.Exit(code)
}

// setup finds the repository, checks for Chromium and builds the WASM client
// into web/dist when it is missing or older than its sources.
func setup() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("not inside the tether module")
	}
	repoRoot = filepath.Dir(gomod)
	if _, err := os.Stat(chromiumPath); err != nil {
		return fmt.Errorf("%s is missing: install it: apt-get install -y chromium", chromiumPath)
	}
	return buildWeb(repoRoot)
}

// buildWeb runs what `make web` runs when web/dist/manifest.json is missing
// or older than any .go file under wasm/ or shared/ (or go.mod).
func buildWeb(root string) error {
	manifest := filepath.Join(root, "web", "dist", assets.ManifestFile)
	stale, err := staleBuild(root, manifest)
	if err != nil || !stale {
		return err
	}
	dist := filepath.Join(root, "web", "dist")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dist, assets.BuildOutput), "./wasm")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the WASM client: %w\n%s", err, out)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	prep := exec.Command("go", "run", "./bff/cmd/tether-assets", "-goroot", strings.TrimSpace(string(goroot)), dist)
	prep.Dir = root
	if out, err := prep.CombinedOutput(); err != nil {
		return fmt.Errorf("tether-assets: %w\n%s", err, out)
	}
	return nil
}

// staleBuild reports whether manifest is missing or older than a source of
// the WASM client.
func staleBuild(root, manifest string) (bool, error) {
	info, err := os.Stat(manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	built := info.ModTime()
	if mod, err := os.Stat(filepath.Join(root, "go.mod")); err == nil && mod.ModTime().After(built) {
		return true, nil
	}
	stale := false
	for _, dir := range []string{"wasm", "shared"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || stale || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			stale = fi.ModTime().After(built)
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	return stale, nil
}

// chromiumOptions are the flags every Chromium of the tests starts with
// (see BROWSER.md): no sandbox (root), no GPU, and nothing that reaches
// for the network, which is closed here, or slows tabs in the background
// (the tabs of one test run at once). Each caller adds its headless mode.
func chromiumOptions() []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
	}
}

// sharedBrowser starts the package's Chromium on first use; TestMain stops it.
func sharedBrowser(tb testing.TB) context.Context {
	tb.Helper()
	browserOnce.Do(func() {
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromiumOptions(),
			chromedp.Flag("headless", true), // not implied when the options are listed
			chromedp.Flag("disable-backgrounding-occluded-windows", true),
			chromedp.WindowSize(1280, 960),
		)...)
		ctx, cancel := chromedp.NewContext(allocCtx)
		browserStop = func() { cancel(); cancelAlloc() }
		// Starts the browser: no timeout on this context, it would kill it.
		if browserErr = chromedp.Do(ctx); browserErr == nil {
			browserCtx = ctx
		}
	})
	if browserErr != nil {
		tb.Fatalf("starting %s: %v (install it: apt-get install -y chromium)", chromiumPath, browserErr)
	}
	return browserCtx
}

// newTab opens a tab in a new browser context: no cookie, storage, lock or
// BroadcastChannel is shared with another test. The tab closes with the test.
func newTab(tb testing.TB) context.Context {
	tb.Helper()
	tab, cancel := chromedp.NewContext(sharedBrowser(tb), chromedp.WithNewBrowserContext())
	tb.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil { // opens the tab: no timeout here either
		tb.Fatalf("opening a tab: %v", err)
	}
	return tab
}

// siblingTab opens another tab in tab's browser context (same cookies).
func siblingTab(tb testing.TB, tab context.Context) context.Context {
	tb.Helper()
	sib, cancel := chromedp.NewContext(tab)
	tb.Cleanup(cancel)
	if err := chromedp.Do(sib); err != nil {
		tb.Fatalf("opening a second tab: %v", err)
	}
	return sib
}
