# Tether. `make run` starts the demo; `make test` installs what the tests
# need and runs them all (this is what CI runs).

GO        ?= go
GOROOT    := $(shell $(GO) env GOROOT)
DIST      := web/dist
WASMFLAGS := -trimpath -ldflags='-s -w'

.PHONY: all run test deps vet e2e bench build clean

all: build

## build: the BFF, the dev provider and the demo binaries into bin/
build:
	$(GO) build -o bin/ ./bff/cmd/...

## run: the whole demo (dev provider, BFF with embedded Redis, the page); Ctrl-C stops it
run:
	$(GO) run ./bff/cmd/tether-demo

## deps: install redis-server and chromium when missing (apt-get as root)
deps:
	@.ci/install-deps

## vet: gofmt, go vet on the host and for js/wasm
vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./shared/...

## test: everything, with the race detector
test: deps vet
	$(GO) test -race -count=1 ./...

## bench: Go benchmarks of the vault and the /bff/token hot path
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./bff/...

clean:
	rm -rf bin $(DIST)
