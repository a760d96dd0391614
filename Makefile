# Imprint. `make run` starts the server on embedded defaults; `make test`
# installs what the tests need (Debian packages, when missing) and runs them all.

GO        ?= go
DATA      ?= imprint-data
GOFLAGS   ?=
export CGO_ENABLED ?= 0

# Debian packages the test suite uses, as command:package pairs. `make deps`
# installs the package of every command that is missing, and nothing else.
TEST_TOOLS := zstd:zstd xz:xz-utils sgdisk:gdisk sfdisk:fdisk mdir:mtools \
	fsck.fat:dosfstools mkfs.ext4:e2fsprogs debugfs:e2fsprogs mkntfs:ntfs-3g ntfsinfo:ntfs-3g \
	wimlib-imagex:wimtools cpio:cpio depmod:kmod curl:curl

.PHONY: build run test deps vet unit bench clean

build:
	$(GO) build -trimpath -o bin/imprint ./cmd/imprint
	$(GO) build -trimpath -o bin/imprint-agent ./cmd/imprint-agent

run: build
	./bin/imprint --data $(DATA) server

deps:
	@pkgs=""; \
	for pair in $(TEST_TOOLS); do \
		cmd=$${pair%%:*}; pkg=$${pair#*:}; \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $$cmd >/dev/null 2>&1 || pkgs="$$pkgs $$pkg"; \
	done; \
	if [ -n "$$pkgs" ]; then \
		echo "installing test dependencies:$$pkgs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs; \
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
