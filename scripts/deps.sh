#!/usr/bin/env bash
# Checks for (and, where possible, installs) everything Gen Studio needs to
# build on this machine.
#
#   bash scripts/deps.sh         # build dependencies
#   bash scripts/deps.sh test    # build + test dependencies
#
# On Debian/Ubuntu the missing packages are installed with apt-get when run as
# root; otherwise the exact command to run is printed. On other systems the
# script explains what to install and carries on, so a developer who installed
# the libraries some other way can still build.
# It is idempotent: when everything is present it prints one line.
set -euo pipefail

MIN_GO_MAJOR=1
MIN_GO_MINOR=24

mode="${1:-build}"
case "$mode" in
build | test) ;;
*)
	echo "usage: $0 [test]" >&2
	exit 2
	;;
esac

build_pkgs=(
	gcc pkg-config
	libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev
	libxi-dev libxxf86vm-dev libgtk-3-dev
	libopenblas-dev
	fonts-noto-cjk
)
test_pkgs=(xvfb xauth imagemagick python3-torch python3-numpy desktop-file-utils xz-utils)

pkgs=("${build_pkgs[@]}")
if [ "$mode" = test ]; then
	pkgs+=("${test_pkgs[@]}")
fi

installed_something=0
checked_system=1

# --- system packages ---------------------------------------------------------
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
	missing=()
	for p in "${pkgs[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		if [ "$(id -u)" -eq 0 ]; then
			echo "deps: installing ${missing[*]}"
			apt-get update
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
			installed_something=1
		else
			echo "deps: these system packages are missing: ${missing[*]}" >&2
			echo "deps: Gen Studio needs a C compiler, the OpenGL/X11/GTK headers (for Fyne)" >&2
			echo "deps: and OpenBLAS (for training). Install them with:" >&2
			echo >&2
			echo "sudo apt-get install -y ${missing[*]}" >&2
			echo >&2
			echo "deps: then run this script again." >&2
			exit 1
		fi
	fi
else
	checked_system=0
	os="$(uname -s 2>/dev/null || echo unknown)"
	cat >&2 <<MSG
deps: apt-get/dpkg-query not found (this is $os, not Debian/Ubuntu), so system
deps: packages cannot be checked. Make sure these are installed:

  macOS:
    - Xcode command line tools (C compiler, OpenGL headers): xcode-select --install
    - Go ${MIN_GO_MAJOR}.${MIN_GO_MINOR} or newer from https://go.dev/dl/
    - no OpenBLAS needed: the Accelerate framework replaces it

  Windows:
    - Go ${MIN_GO_MAJOR}.${MIN_GO_MINOR} or newer from https://go.dev/dl/
    - a gcc on PATH, such as MSYS2's mingw-w64 gcc or TDM-GCC
    - build with: go build -tags noopenblas .

  Other Linux: a C compiler, pkg-config, the OpenGL, X11 (Xcursor, Xrandr,
  Xinerama, Xi, Xxf86vm) and GTK 3 development headers, and OpenBLAS.

deps: continuing, assuming these were installed by other means.
MSG
fi

# --- Go toolchain ------------------------------------------------------------
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH="/usr/local/go/bin:$PATH"
	export PATH
fi
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go is not installed (or not on PATH)." >&2
	echo "deps: install Go ${MIN_GO_MAJOR}.${MIN_GO_MINOR} or newer from https://go.dev/dl/ and add its bin directory to PATH." >&2
	exit 1
fi

go_version="$(go env GOVERSION 2>/dev/null || true)"
if [ -z "$go_version" ]; then
	go_version="$(go version | awk '{print $3}')"
fi
ver="${go_version#go}"
major="${ver%%.*}"
rest="${ver#*.}"
minor="${rest%%[!0-9]*}"
if ! [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]]; then
	echo "deps: cannot parse the Go version from '$go_version'" >&2
	exit 1
fi
if [ "$major" -lt "$MIN_GO_MAJOR" ] || { [ "$major" -eq "$MIN_GO_MAJOR" ] && [ "$minor" -lt "$MIN_GO_MINOR" ]; }; then
	echo "deps: $go_version is too old; Gen Studio needs Go ${MIN_GO_MAJOR}.${MIN_GO_MINOR} or newer." >&2
	echo "deps: (go.mod may ask for a newer toolchain, which go downloads itself when allowed.)" >&2
	echo "deps: install a current Go from https://go.dev/dl/" >&2
	exit 1
fi

# --- Go modules --------------------------------------------------------------
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! go mod download; then
	echo "deps: 'go mod download' failed; check your network or GOPROXY/GOFLAGS settings." >&2
	exit 1
fi

if [ "$checked_system" -eq 0 ]; then
	echo "deps: Go toolchain and modules ready (system packages not checked)"
elif [ "$installed_something" -eq 0 ]; then
	echo "deps: all present"
else
	echo "deps: done"
fi
