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
	dnsmasq:dnsmasq-base /usr/lib/ipxe/ipxe.efi:ipxe chromium:chromium promtool:prometheus \
	/usr/lib/postgresql/*/bin/initdb:postgresql udp-sender:udpcast udp-receiver:udpcast \
	dpkg:dpkg dpkg-query:dpkg git:git readelf:binutils systemd-analyze:systemd systemctl:systemd \
	systemd-sysusers:systemd systemd-tmpfiles:systemd

.PHONY: build run test deps vet unit fuzz e2e e2e-windows windows-iso test-s3 bench deb release clean

build:
	$(GO) build -trimpath -o bin/imprint ./cmd/imprint
	$(GO) build -trimpath -o bin/imprint-agent ./cmd/imprint-agent
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -o bin/imprint-agent.exe ./cmd/imprint-agent

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

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	@# go vet type-checks the tests but does not link them: build and link
	@# every package's test binary for windows/amd64 (the Windows agent's
	@# tests cannot run here, they must at least build). -exec true "runs"
	@# each binary by ignoring it, so go test links the packages in parallel.
	GOOS=windows GOARCH=amd64 $(GO) test -count=1 -exec /bin/true ./... >/dev/null
	$(GO) vet -tags e2e ./e2e/
	$(GO) vet -tags 'e2e windowsiso' ./e2e/
	$(GO) vet -tags s3 ./internal/content/... ./internal/server/ ./internal/cli/

# IMPRINT_TEST_REQUIRE makes a test whose host prerequisite is missing (a
# tool, root, PostgreSQL for internal/store/postgres, chromium for the
# console's browser test) fail, naming the package to install, instead of
# skipping (internal/testenv). The browser test saves a screenshot of every
# console page in IMPRINT_SCREENSHOTS.
SCREENSHOTS ?= $(CURDIR)/bin/console-screenshots
unit:
	IMPRINT_TEST_REQUIRE=1 IMPRINT_SCREENSHOTS=$(SCREENSHOTS) CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...
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

# The Windows bare metal template with real Windows media, for anyone who
# has it (not part of `make test`: there is none here). WINDOWS_ISO is a
# Windows 10/11 installation ISO; WINDOWS_INDEX picks the image in its
# install.wim (default 1); WINDOWS_TIMEOUT bounds the wait (default 3h;
# with /dev/kvm it takes minutes).
e2e-windows: windows-iso build
	IMPRINT_TEST_REQUIRE=1 IMPRINT_WINDOWS_ISO="$(abspath $(WINDOWS_ISO))" IMPRINT_WINDOWS_INDEX="$(WINDOWS_INDEX)" \
		IMPRINT_WINDOWS_TIMEOUT="$(WINDOWS_TIMEOUT)" \
		$(GO) test -tags 'e2e windowsiso' -count=1 -v -timeout 5h -run '^TestWindowsISO$$' ./e2e/

windows-iso:
	@test -n "$(WINDOWS_ISO)" || { echo "make e2e-windows needs WINDOWS_ISO=path/to/windows.iso (Windows 10 or 11 installation media)" >&2; exit 2; }
	@test -f "$(WINDOWS_ISO)" || { echo "make e2e-windows: WINDOWS_ISO=$(WINDOWS_ISO) is not a file" >&2; exit 2; }

test: deps vet build unit fuzz e2e

# The content store's S3 tests (build tag s3) against a real SeaweedFS:
# scripts/weed.sh builds bin/tools/weed from the Go module proxy first,
# which takes long on 2 cores (docs/performance.md), more than CI's budget
# for make test, so they are a target of their own.
test-s3:
	GO=$(GO) ./scripts/weed.sh
	IMPRINT_TEST_REQUIRE=1 CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m -tags s3 ./internal/content/... ./internal/server/
	IMPRINT_TEST_REQUIRE=1 CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 10m -tags s3 -run 'TestMigrateContent' ./internal/cli/
	IMPRINT_TEST_REQUIRE=1 CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m -tags s3 -run '^TestReplicasActAsOne$$' ./internal/integration/

bench:
	./bench/run.sh

# Debian packages imprint and imprint-agent in dist/ (scripts/deb.sh; the
# unit and its hardening: docs/packaging.md). The version comes from git
# (scripts/debversion.sh): vX.Y.Z tags, else 0~git.COMMITS.HASH.
deb: build
	scripts/deb.sh bin dist

# Static binaries (CGO_ENABLED=0) for linux/amd64 and linux/arm64, the
# Windows agent and SHA256SUMS in dist/ (scripts/release.sh, which fails
# on a Linux binary that names a dynamic loader).
release:
	GO=$(GO) scripts/release.sh dist

clean:
	rm -rf bin dist
