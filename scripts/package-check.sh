#!/usr/bin/env bash
# Checks a Linux package made by "make package": the .desktop file passes
# desktop-file-validate, the icon is there at the standard sizes, the
# binary names its commit, and the packaged binary prints
# its version and trains a few steps on the built-in MNIST with an empty
# HOME and no Go on PATH (the data set and the evaluator are inside it).
set -euo pipefail
pkg=${1:-"Gen Studio.tar.xz"}
command -v desktop-file-validate >/dev/null || { echo "package-check: install desktop-file-utils"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xJf "$pkg" -C "$tmp"
root="$tmp/genstudio/usr/local"
desktop="$root/share/applications/io.genstudio.app.desktop"
desktop-file-validate "$desktop"
grep -q '^Categories=Science;ArtificialIntelligence;' "$desktop"
grep -q '^Keywords=.*GAN' "$desktop"
test -s "$root/share/pixmaps/io.genstudio.app.png"
# The icon at the standard sizes, each a PNG of its size.
for n in 16 24 32 48 64 128 256 512; do
	icon="$root/share/icons/hicolor/${n}x${n}/apps/io.genstudio.app.png"
	read -r w h < <(od -An -tu1 -j16 -N8 "$icon" | awk '{ print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8 }')
	[ "$w" = "$n" ] && [ "$h" = "$n" ] || { echo "package-check: $icon is ${w}x${h}" >&2; exit 1; }
done
grep -q 'share/icons/hicolor' "$tmp/genstudio/Makefile"
bin="$root/bin/genstudio"
mkdir "$tmp/home"
run() { env -i HOME="$tmp/home" PATH=/usr/bin:/bin LANG=C.UTF-8 "$bin" "$@"; }
run --version | grep -qE '^Gen Studio 0\.1\.0 \(commit [0-9a-f]{12}'
run train --family gan --g-hidden 16 --d-hidden 16 --batch 8 --steps 3 --out "$tmp/run" | grep -q 'done at step 3'
run eval --checkpoint "$tmp/run/checkpoints/step-00000003.safetensors" --n 256 --json | grep -q '"fid"'
echo "package-check: $pkg is fine"
