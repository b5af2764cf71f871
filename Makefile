# Gen Studio build targets.
#
#   make run     build and open the studio window
#   make test    vet and run the whole test suite
#
# Other targets: deps, test-deps, build, bench, windows, package, clean.

GO ?= go
export CGO_ENABLED := 1

# Go's default install location, used when go is not already on PATH.
ifeq ($(shell command -v $(GO) 2>/dev/null),)
ifneq ($(wildcard /usr/local/go/bin/go),)
export PATH := /usr/local/go/bin:$(PATH)
endif
endif

BIN := bin/genstudio
# The commit goes into --version and Help → About even where Go's own VCS
# stamping is off (GOFLAGS=-buildvcs=false).
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo +changes)
LDFLAGS := -X main.commit=$(COMMIT)
FYNE_VERSION := v1.7.4

.PHONY: all deps test-deps build run test bench windows windows-check fyne-cli package install uninstall package-check clean

all: build

# Checks for (and, as root on Debian/Ubuntu, installs) the system packages
# and the Go toolchain, then downloads the Go modules.
deps:
	bash scripts/deps.sh

# deps plus what the tests need (Xvfb, xauth, ImageMagick, PyTorch, NumPy,
# desktop-file-utils).
test-deps:
	bash scripts/deps.sh test

build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

# Opens the studio window.
run: build
	./$(BIN)

# The tests that need a display start Xvfb themselves.
test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...
	$(GO) test -count=1 -tags noopenblas -run 'PlainGo|Gradient|SameSeed' ./models/
	# The macOS build's library code (cgo-free parts) compiles and vets.
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) vet ./models/... ./training/... ./project/...
	# Fuzzing is bounded by a count of executions, not a duration: Go 1.26's
	# coordinator can fail a duration-bounded run with "context deadline
	# exceeded" at the deadline (go.dev/issue/75804, fixed in Go 1.27).
	for f in FuzzReadIDX FuzzCIFAR FuzzZip FuzzProjectJSON; do \
		$(GO) test -run=XXX -fuzz=$$f -fuzztime=40000x ./project/ || exit 1; \
	done
	# The Linux package: its .desktop file, icons and binary (no Go, empty HOME).
	$(MAKE) package-check
	# The Windows executable, where the cross compiler is installed (it is
	# not part of test-deps: a cold cross-build takes about 8 minutes).
	@if command -v x86_64-w64-mingw32-gcc >/dev/null; then $(MAKE) windows-check; \
	else echo "windows-check skipped: no x86_64-w64-mingw32-gcc (sudo apt-get install -y gcc-mingw-w64-x86-64)"; fi

# The speed table of the README: Gen Studio beside the PyTorch references,
# 3 interleaved repetitions (about 10 minutes; keep the machine quiet).
BENCH_FLAGS ?= --reps 3
bench: build
	./$(BIN) bench $(BENCH_FLAGS)

# Cross-builds for 64-bit Windows from Linux: dist/Gen Studio.exe (a GUI
# executable with the icon and version resource; OpenBLAS left out) and
# the zip a Windows user unpacks. Needs the mingw-w64 cross compiler:
# sudo apt-get install -y gcc-mingw-w64-x86-64 (a cold build takes ~8 min).
windows: deps fyne-cli
	@PATH="$$($(GO) env GOPATH)/bin:$$PATH"; export PATH; bash scripts/package-windows.sh "$(COMMIT)"

# Checks the Windows executable: PE32+, GUI subsystem, icon and version
# resources. make test runs it where the cross compiler is installed.
windows-check: windows
	GENSTUDIO_WINDOWS_EXE="$(CURDIR)/dist/Gen Studio.exe" $(GO) test -count=1 -run TestWindowsExecutable .

fyne-cli:
	@gobin="$$($(GO) env GOPATH)/bin"; \
	if ! command -v fyne >/dev/null 2>&1 && [ ! -x "$$gobin/fyne" ]; then \
		echo "installing fyne.io/tools/cmd/fyne@$(FYNE_VERSION)"; \
		$(GO) install fyne.io/tools/cmd/fyne@$(FYNE_VERSION) || exit 1; \
	fi

# Builds a Linux desktop package (.tar.xz with the binary, the .desktop file
# and the icon at the standard sizes) with the fyne CLI, installing it into
# $(go env GOPATH)/bin when missing.
package: deps fyne-cli
	@PATH="$$($(GO) env GOPATH)/bin:$$PATH"; export PATH; bash scripts/package-linux.sh "$(COMMIT)"

PKG := Gen Studio.tar.xz

# Installs the package: into ~/.local (a user's application menu), or into
# /usr/local as root. "make uninstall" removes it again.
install: package
	@tmp=$$(mktemp -d) && tar -xJf "$(PKG)" -C "$$tmp" && \
	if [ "$$(id -u)" = 0 ]; then $(MAKE) -s -C "$$tmp/genstudio" install; \
	else $(MAKE) -s -C "$$tmp/genstudio" user-install; fi; \
	rc=$$?; rm -rf "$$tmp"; exit $$rc

uninstall:
	@if [ "$$(id -u)" = 0 ]; then p=/usr/local; rm -f $$p/share/pixmaps/io.genstudio.app.png; \
	else p=$$HOME/.local; rm -f $$p/share/icons/io.genstudio.app.png; fi; \
	rm -f $$p/share/icons/hicolor/*/apps/io.genstudio.app.png; \
	rm -f $$p/share/applications/io.genstudio.app.desktop $$p/bin/genstudio; echo "removed Gen Studio from $$p"

# Checks the package: the .desktop file validates, and the packaged binary
# runs with an empty HOME and no Go toolchain or module cache.
package-check: package
	bash scripts/package-check.sh "$(PKG)"

clean:
	rm -rf bin dist genstudio genstudio.exe "Gen Studio.tar.xz" "Gen Studio.exe"
