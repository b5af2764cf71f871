#!/usr/bin/env bash
# Builds the Linux desktop package "Gen Studio.tar.xz" (make package):
# fyne package's archive (the binary with its commit, the .desktop file,
# the icon), plus the icon at the freedesktop standard sizes under
# share/icons/hicolor, which the archive's Makefile installs and removes.
#
#   bash scripts/package-linux.sh COMMIT
set -euo pipefail
commit=${1:-unknown}
pkg="Gen Studio.tar.xz"
id=io.genstudio.app

# fyne package counts builds in FyneApp.toml; keep the tracked file as it is.
keep=$(mktemp)
cp FyneApp.toml "$keep"
trap 'cp "$keep" FyneApp.toml; rm -f "$keep"' EXIT
# fyne package runs go build; GOFLAGS carries the commit to the linker.
GOFLAGS="${GOFLAGS:-} -ldflags=-X=main.commit=$commit" fyne package -os linux -icon Icon.png

tmp=$(mktemp -d)
trap 'cp "$keep" FyneApp.toml; rm -f "$keep"; rm -rf "$tmp"' EXIT
tar -xJf "$pkg" -C "$tmp"
root="$tmp/genstudio"
go run ./internal/iconsizes Icon.png "$id" "$root/usr/local/share/icons"

# The archive's Makefile: install and remove the sized icons too.
mk="$root/Makefile"
sizes=$(cd "$root/usr/local/share/icons/hicolor" && ls -d */ | tr -d / | tr '\n' ' ')
# after LINE: insert EXTRA (a recipe line) after the recipe line LINE.
after() {
	awk -v anchor="$1" -v extra="$2" '{ print } $0 == "\t" anchor { print "\t" extra }' "$mk" >"$mk.new"
	grep -qF -- "$2" "$mk.new" || { echo "package: the Makefile of fyne package changed; no line $1" >&2; exit 1; }
	mv "$mk.new" "$mk"
}
loop="for s in $sizes; do"
after 'install -Dm00644 usr/local/share/pixmaps/$(Icon) $(DESTDIR)$(PREFIX)/share/pixmaps/$(Icon)' \
	"$loop install -Dm00644 usr/local/share/icons/hicolor/\$\$s/apps/\$(Icon) \$(DESTDIR)\$(PREFIX)/share/icons/hicolor/\$\$s/apps/\$(Icon); done"
after '-rm $(DESTDIR)$(PREFIX)/share/pixmaps/$(Icon)' \
	"-$loop rm -f \$(DESTDIR)\$(PREFIX)/share/icons/hicolor/\$\$s/apps/\$(Icon); done"
after 'install -Dm00644 usr/local/share/pixmaps/$(Icon) $(DESTDIR)$(HOME)/.local/share/icons/$(Icon)' \
	"$loop install -Dm00644 usr/local/share/icons/hicolor/\$\$s/apps/\$(Icon) \$(DESTDIR)\$(HOME)/.local/share/icons/hicolor/\$\$s/apps/\$(Icon); done"
after '-rm $(DESTDIR)$(HOME)/.local/share/icons/$(Icon)' \
	"-$loop rm -f \$(DESTDIR)\$(HOME)/.local/share/icons/hicolor/\$\$s/apps/\$(Icon); done"

rm -f "$pkg"
tar -cJf "$pkg" -C "$tmp" genstudio
echo "package: $pkg (commit $commit, icons $sizes)"
