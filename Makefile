# Tether. `make run` starts the demo; `make test` installs what the tests
# need and runs them all (this is what CI runs).

GO        ?= go
GOROOT    := $(shell $(GO) env GOROOT)
DIST      := web/dist
WASMFLAGS := -trimpath -ldflags='-s -w'

.PHONY: all run run-gofullstack gofullstack-ui test deps vet web npm example example-deps extension fuzz e2e bench build clean

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

## npm: the browser client as an npm package (ES module, types, the wasm,
## wasm_exec.js of this Go), laid out in web/dist/npm and packed into
## web/dist/tetherauth-tether-<version>.tgz
NPM_PKG     := $(DIST)/npm
NPM_VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' web/npm/package.json)
NPM_TGZ     := $(DIST)/tetherauth-tether-$(NPM_VERSION).tgz
npm: $(NPM_TGZ)

$(NPM_TGZ): $(DIST)/manifest.json web/tether.js $(wildcard web/npm/*)
	$(GO) run ./bff/cmd/tether-assets -npm $(NPM_PKG) $(DIST)
	cd $(NPM_PKG) && npm pack --pack-destination .. --loglevel=warn >/dev/null

## extension: the example browser extension (web/extension) made
## loadable: the wasm, dist/manifest.json and wasm_exec.js of web/dist into
## web/extension/dist, web/tether.js beside them (build output, ignored by
## git). Load web/extension unpacked (chrome://extensions, Developer mode)
## and start the demo with TETHER_EXTENSION_ORIGINS (see the README).
EXTENSION := web/extension
extension: web
	rm -rf $(EXTENSION)/dist
	mkdir -p $(EXTENSION)/dist
	cp $(DIST)/manifest.json $(DIST)/wasm_exec.js $(EXTENSION)/dist/
	cp $(DIST)/$$(sed -n 's/^  "wasm": "\(.*\)",$$/\1/p' $(DIST)/manifest.json) $(EXTENSION)/dist/
	cp web/tether.js $(EXTENSION)/tether.js

## example-deps: the Vite example's node_modules (npm ci from its lockfile),
## only when the lockfile or the package changed; example: its type check
## (tsc --strict) and its build into web/examples/vite/dist, with .gz/.br
## variants for the BFF to serve
EXAMPLE     := web/examples/vite
EXAMPLE_SRC := $(wildcard $(EXAMPLE)/src/* $(EXAMPLE)/typecheck/*) $(EXAMPLE)/index.html \
               $(EXAMPLE)/vite.config.ts $(EXAMPLE)/tsconfig.json
example-deps: $(EXAMPLE)/node_modules/.package-lock.json
example: $(EXAMPLE)/dist/index.html

$(EXAMPLE)/node_modules/.package-lock.json: $(EXAMPLE)/package-lock.json $(EXAMPLE)/package.json $(NPM_TGZ)
	cd $(EXAMPLE) && npm ci --prefer-offline --loglevel=warn

$(EXAMPLE)/dist/index.html: $(EXAMPLE)/node_modules/.package-lock.json $(EXAMPLE_SRC)
	cd $(EXAMPLE) && npx tsc --noEmit --strict && npx vite build --logLevel warn
	$(GO) run ./bff/cmd/tether-assets -compress $(EXAMPLE)/dist

## run: the whole demo (dev provider, BFF with embedded Redis, the page);
## Ctrl-C stops it. The binary runs itself (not under go run), so its exit
## status, 0 after a clean shutdown, is make's.
run: web
	$(GO) build -o bin/tether-demo ./bff/cmd/tether-demo
	bin/tether-demo

## run-gofullstack: the Go full-stack example (web/examples/gofullstack): a
## Gin app with Tether under /auth, a page rendered on the server with the
## API's data, a Go WebAssembly UI; http://127.0.0.1:8081, Ctrl-C stops it
GOFULLSTACK := web/examples/gofullstack
run-gofullstack: gofullstack-ui
	$(GO) build -o bin/gofullstack ./$(GOFULLSTACK)
	bin/gofullstack -dist $(GOFULLSTACK)/dist

## gofullstack-ui: the example's Go UI and wasm_exec.js into its dist/
gofullstack-ui:
	mkdir -p $(GOFULLSTACK)/dist
	GOOS=js GOARCH=wasm $(GO) build $(WASMFLAGS) -o $(GOFULLSTACK)/dist/ui.wasm ./$(GOFULLSTACK)/ui
	cp "$(GOROOT)/lib/wasm/wasm_exec.js" $(GOFULLSTACK)/dist/

## deps: install redis-server, chromium and Node.js with npm when missing
## (apt-get as root)
deps:
	@.ci/install-deps

## vet: gofmt, go vet on the host and for js/wasm
vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./wasm/... ./shared/... ./$(GOFULLSTACK)/ui

## test: everything: host tests with the race detector (the e2e tests drive
## headless Chromium; they type-check and build the Vite example from the
## node_modules example-deps installs), and the WASM bindings under Node
test: deps vet web example-deps
	$(GO) test -race -count=1 ./...
	GOOS=js GOARCH=wasm $(GO) test -count=1 -exec="$(GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm/... ./shared/...
	$(MAKE) fuzz

## fuzz: every fuzz target for FUZZTIME each (the committed corpus in
## testdata/fuzz runs in plain `go test` too)
FUZZTIME ?= 4000x
FUZZ := ./bff:FuzzReturnTo ./bff:FuzzExtensionReturnTo ./bff:FuzzTokenBody ./bff:FuzzCallbackQuery ./bff:FuzzSessionCookie \
        ./bff:FuzzTokenJSON ./bff:FuzzCookieValue \
        ./bff/provider:FuzzTokenResponse ./bff/vault:FuzzRecordBinary
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
	rm -rf bin $(DIST) $(EXAMPLE)/dist $(EXAMPLE)/node_modules $(EXTENSION)/dist $(EXTENSION)/tether.js
