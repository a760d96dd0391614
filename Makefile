# Imprint. `make run` starts the server on embedded defaults; `make test`
# installs what the tests need (Debian packages, when missing) and runs them all.

GO        ?= go
DATA      ?= imprint-data
GOFLAGS   ?=
export CGO_ENABLED ?= 0

# Debian packages the test suite uses, as need:package pairs, where need is
# a command or an absolute path (a glob when the path holds a version).
# `make deps` installs the package of every need that is missing, and
# nothing else.
TEST_NEEDS := zstd:zstd xz:xz-utils sgdisk:gdisk sfdisk:fdisk mdir:mtools \
	fsck.fat:dosfstools mkfs.ext4:e2fsprogs debugfs:e2fsprogs mkntfs:ntfs-3g ntfsinfo:ntfs-3g \
	wimlib-imagex:wimtools hivexml:libhivex-bin hivexsh:libhivex-bin cpio:cpio depmod:kmod curl:curl partprobe:parted objcopy:binutils \
	grub-mkrescue:grub-common xorriso:xorriso /usr/lib/grub/i386-pc:grub-pc-bin \
	/usr/lib/grub/x86_64-efi:grub-efi-amd64-bin qemu-system-x86_64:qemu-system-x86 \
	/usr/share/OVMF/OVMF_CODE_4M.fd:ovmf /usr/share/OVMF/OVMF_CODE_4M.secboot.fd:ovmf \
	/usr/share/OVMF/OVMF_VARS_4M.ms.fd:ovmf grub-mkimage:grub-common mkfs.fat:dosfstools \
	/usr/lib/ipxe/qemu/efi-virtio.rom:ipxe-qemu \
	/usr/share/seabios/bios-256k.bin:seabios ip:iproute2 dpkg-deb:dpkg \
	dnsmasq:dnsmasq-base /usr/lib/ipxe/ipxe.efi:ipxe chromium:chromium \
	/usr/lib/postgresql/*/bin/initdb:postgresql

.PHONY: build run test deps vet unit fuzz e2e bench clean

build:
	$(GO) build -trimpath -o bin/imprint ./cmd/imprint
	$(GO) build -trimpath -o bin/imprint-agent ./cmd/imprint-agent

run: build
	./bin/imprint --data $(DATA) server

deps:
	@pkgs=""; \
	for pair in $(TEST_NEEDS); do \
		need=$${pair%%:*}; pkg=$${pair#*:}; \
		case $$need in \
		/*) ls -d $$need >/dev/null 2>&1 || pkgs="$$pkgs $$pkg" ;; \
		*) PATH="$$PATH:/usr/sbin:/sbin" command -v $$need >/dev/null 2>&1 || pkgs="$$pkgs $$pkg" ;; \
		esac; \
	done; \
	if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then \
		echo "apt has no package lists (the e2e tests download a kernel with apt-get): apt-get update"; \
		apt-get update -qq; \
	fi; \
	if [ -n "$$pkgs" ]; then \
		echo "installing test dependencies:$$pkgs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$pkgs; \
	fi
	GO=$(GO) ./scripts/weed.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/

# IMPRINT_TEST_REQUIRE makes a test whose host prerequisite is missing (a
# tool, root, PostgreSQL for internal/store/postgres, chromium for the
# console's browser test) fail, naming the package to install, instead of
# skipping (internal/testenv). The browser test saves a screenshot of every
# console page in IMPRINT_SCREENSHOTS.
SCREENSHOTS ?= $(CURDIR)/bin/console-screenshots
# The content tests run a SeaweedFS S3 server (bin/tools/weed, scripts/weed.sh).
unit:
	GO=$(GO) ./scripts/weed.sh
	IMPRINT_TEST_REQUIRE=1 IMPRINT_SCREENSHOTS=$(SCREENSHOTS) CGO_ENABLED=1 $(GO) test -race -count=1 ./...
	@echo "console screenshots: $(SCREENSHOTS)"

# Every fuzz target in the tree runs for FUZZTIME (scripts/fuzz.sh): 9
# targets x (5 s + about 6 s to build) is under 2 minutes on 2 cores.
# `make unit` already runs their seed corpora (testdata/fuzz) as tests. An
# input that fails is written to the package's testdata/fuzz/FuzzXxx: fix
# the bug and commit the input as a seed.
FUZZTIME ?= 5s

fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# The QEMU end-to-end tests: a VM network-boots, types its passcode, writes
# its disk and boots what was deployed. Needs root (network namespaces); a
# missing prerequisite fails (IMPRINT_TEST_REQUIRE), it never skips.
e2e: build
	IMPRINT_TEST_REQUIRE=1 $(GO) test -tags e2e -count=1 -v -timeout 20m ./e2e/

test: deps vet build unit fuzz e2e

bench:
	./bench/run.sh

clean:
	rm -rf bin
