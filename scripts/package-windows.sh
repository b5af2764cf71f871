#!/usr/bin/env bash
# Cross-builds the Windows package (make windows): "Gen Studio.exe" for
# 64-bit Windows, with the icon and the version resource of FyneApp.toml
# embedded by fyne package and OpenBLAS left out (pure-Go BLAS), then zips
# it for users: dist/GenStudio-VERSION-windows-amd64.zip.
#
#   bash scripts/package-windows.sh COMMIT
# Needs the mingw-w64 cross compiler (Debian: gcc-mingw-w64-x86-64).
set -euo pipefail
commit=${1:-unknown}
command -v x86_64-w64-mingw32-gcc >/dev/null || {
	echo "windows: install the cross compiler: sudo apt-get install -y gcc-mingw-w64-x86-64" >&2
	exit 1
}
version=$(sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
# fyne package counts builds in FyneApp.toml; keep the tracked file as it is.
keep=$(mktemp)
cp FyneApp.toml "$keep"
trap 'cp "$keep" FyneApp.toml; rm -f "$keep"' EXIT
CC=x86_64-w64-mingw32-gcc CGO_ENABLED=1 GOFLAGS="${GOFLAGS:-} -ldflags=-X=main.commit=$commit" \
	fyne package -os windows -icon Icon.png --tags noopenblas --release
mkdir -p dist
mv -f "Gen Studio.exe" "dist/Gen Studio.exe"
zip="dist/GenStudio-$version-windows-amd64.zip"
rm -f "$zip"
(cd dist && python3 -m zipfile -c "$(basename "$zip")" "Gen Studio.exe")
echo "windows: dist/Gen Studio.exe and $zip (commit $commit)"
