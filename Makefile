# Imprint. `make run` starts the server on embedded defaults; `make test`
# installs what the tests need (Debian packages, when missing) and runs them all.

GO        ?= go
DATA      ?= imprint-data
GOFLAGS   ?=
export CGO_ENABLED ?= 0

# Debian packages the test suite uses. Installed by `make deps` only when
# one of the commands is missing.
TEST_PKGS := zstd xz-utils

.PHONY: build run test deps vet unit bench clean

build:
	$(GO) build -trimpath -o bin/imprint ./cmd/imprint
	$(GO) build -trimpath -o bin/imprint-agent ./cmd/imprint-agent

run: build
	./bin/imprint --data $(DATA) server

deps:
	@missing=""; \
	for c in zstd xz; do command -v $$c >/dev/null 2>&1 || missing=yes; done; \
	if [ -n "$$missing" ]; then \
		echo "installing test dependencies: $(TEST_PKGS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_PKGS); \
	fi

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

unit:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

test: deps vet build unit

bench:
	./bench/run.sh

clean:
	rm -rf bin
