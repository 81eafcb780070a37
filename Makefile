# Tether. `make run` starts the demo; `make test` installs what the tests
# need and runs them all (this is what CI runs).

GO        ?= go
GOROOT    := $(shell $(GO) env GOROOT)
DIST      := web/dist
WASMFLAGS := -trimpath -ldflags='-s -w'

.PHONY: all run test deps vet web fuzz e2e bench build clean

all: build

## build: the BFF, the dev provider and the demo binaries into bin/
build:
	$(GO) build -o bin/ ./bff/cmd/...

## web: the WASM client, content-hashed and pre-compressed, plus wasm_exec.js
## from this Go toolchain, into web/dist; only when one of its sources (the
## client's and the assets tool's Go files, go.mod, go.sum, this Go's
## wasm_exec.js) is newer than web/dist/manifest.json
web: $(DIST)/manifest.json

WEB_SOURCES := $(shell find wasm shared bff/assets bff/cmd/tether-assets -name '*.go' ! -name '*_test.go') \
               go.mod go.sum $(wildcard $(GOROOT)/lib/wasm/wasm_exec.js)

$(DIST)/manifest.json: $(WEB_SOURCES)
	GOOS=js GOARCH=wasm $(GO) build $(WASMFLAGS) -o $(DIST)/tether.wasm ./wasm
	$(GO) run ./bff/cmd/tether-assets -goroot "$(GOROOT)" $(DIST)

## run: the whole demo (dev provider, BFF with embedded Redis, the page);
## Ctrl-C stops it. The binary runs itself (not under go run), so its exit
## status, 0 after a clean shutdown, is make's.
run: web
	$(GO) build -o bin/tether-demo ./bff/cmd/tether-demo
	bin/tether-demo

## deps: install redis-server and chromium when missing (apt-get as root)
deps:
	@.ci/install-deps

## vet: gofmt, go vet on the host and for js/wasm
vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./wasm/... ./shared/...

## test: everything: host tests with the race detector (the e2e tests drive
## headless Chromium), and the WASM bindings under Node
test: deps vet web
	$(GO) test -race -count=1 ./...
	GOOS=js GOARCH=wasm $(GO) test -count=1 -exec="$(GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm/... ./shared/...
	$(MAKE) fuzz

## fuzz: every fuzz target for FUZZTIME each (the committed corpus in
## testdata/fuzz runs in plain `go test` too)
FUZZTIME ?= 4s
FUZZ := ./bff:FuzzReturnTo ./bff:FuzzTokenBody ./bff:FuzzCallbackQuery ./bff:FuzzSessionCookie \
        ./bff/provider:FuzzTokenResponse
fuzz:
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t#*:}; \
	  echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

## bench: Go benchmarks of the vault and the /bff/token hot path; the whole
## stack as processes (tether-bench: hot path beside a bare Redis-GET
## handler, refresh storm, memory per session); the browser benchmarks
## (tether.fetch vs fetch, start-up vs an empty Go wasm)
BENCHFLAGS ?=
bench: deps web
	$(GO) test -run '^$$' -bench . -benchmem ./bff/...
	$(GO) run ./e2e/cmd/tether-bench $(BENCHFLAGS)
	$(GO) test -run '^$$' -bench . ./e2e/

clean:
	rm -rf bin $(DIST)
