#!/usr/bin/env bash
# Regenerates Icon.png (1024x1024), the Gen Studio app icon, with ImageMagick 6.
#
# Design: a rounded indigo-to-violet tile. A large glowing four-point sparkle
# emerges from noise: its left arm breaks up into a grid of pixel cells that
# scatter into random speckle towards the left edge - a generative
# (diffusion) model turning noise into a picture. Two small sparkles
# accompany it.
#
#   bash scripts/make-icon.sh [output.png]   (a relative output path is taken
#                                            from the repository root)
#
# ICON_TMP=dir keeps the intermediate images in dir for inspection.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-Icon.png}"

if [ -x /usr/bin/convert ]; then
	IM=/usr/bin/convert
elif command -v convert >/dev/null 2>&1; then
	IM="$(command -v convert)"
else
	echo "make-icon: ImageMagick's convert is needed (apt-get install imagemagick)" >&2
	exit 1
fi

tmp="${ICON_TMP:-$(mktemp -d)}"
[ -n "${ICON_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT

S=1024   # canvas
M=64     # margin around the tile
R=196    # tile corner radius
CELL=40  # pixel-cell pitch
GRID=$(((S - 2 * M) / CELL))   # cells per side
INNER=$((GRID * CELL))
OFF=$(((S - INNER) / 2))

# Big sparkle: centre, vertical arm, horizontal arm, waist.
CX=540 CY=528 RV=350 RH=330 K=38

# Where things happen, in canvas x pixels:
NOISE_END=$((CX - RH * 35 / 100)) # noise fully resolved into the (pixelated) sparkle
SNAP0=$((CX - RH * 42 / 100))     # cells start snapping into the clean sparkle
SNAP1=$((CX - RH * 22 / 100))     # every cell is clean from here on

# A four-point star with concave sides: path cx cy arm_v arm_h waist.
sparkle() {
	local cx=$1 cy=$2 rv=$3 rh=$4 k=$5
	printf "path 'M %d,%d Q %d,%d %d,%d Q %d,%d %d,%d Q %d,%d %d,%d Q %d,%d %d,%d Z'" \
		"$cx" "$((cy - rv))" \
		"$((cx + k))" "$((cy - k))" "$((cx + rh))" "$cy" \
		"$((cx + k))" "$((cy + k))" "$cx" "$((cy + rv))" \
		"$((cx - k))" "$((cy + k))" "$((cx - rh))" "$cy" \
		"$((cx - k))" "$((cy - k))" "$cx" "$((cy - rv))"
}

# 1. Tile background: diagonal indigo -> violet, and a soft light behind the
#    sparkle.
"$IM" -size "${S}x${S}" -define gradient:angle=135 gradient:'#241a6e-#8b35e0' \
	\( -size "${S}x${S}" radial-gradient:'#a78bfa-#000000' -evaluate multiply 0.5 \
	-distort SRT "0.85 0 $((CX - S / 2)),$((CY - S / 2))" \) \
	-compose screen -composite "$tmp/bg.png"

# 2. Sparkle masks (white on black).
"$IM" -size "${S}x${S}" xc:black -fill white -draw "$(sparkle "$CX" "$CY" "$RV" "$RH" "$K")" \
	"$tmp/big.png"
"$IM" -size "${S}x${S}" xc:black -fill white \
	-draw "$(sparkle 806 236 92 80 11)" -draw "$(sparkle 826 792 52 46 7)" \
	"$tmp/small.png"

# 3. Cell field, GRID x GRID values over the tile: random speckle on the left
#    resolving into the (pixelated) sparkle towards NOISE_END. Cells that would
#    be cut by the tile's rounded corners are dropped.
"$IM" "$tmp/big.png" -morphology Dilate Disk:10 -crop "${INNER}x${INNER}+${OFF}+${OFF}" +repage \
	-filter box -resize "${GRID}x${GRID}!" "$tmp/shape_small.png"
"$IM" -size "${S}x${S}" xc:black -fill white \
	-draw "roundrectangle $((M + 14)),$((M + 14)) $((S - M - 15)),$((S - M - 15)) $((R - 30)),$((R - 30))" \
	-crop "${INNER}x${INNER}+${OFF}+${OFF}" +repage \
	-filter box -resize "${GRID}x${GRID}!" -threshold 99% "$tmp/inside_small.png"
"$IM" -seed 11 -size "${GRID}x${GRID}" xc:gray50 +noise Random -colorspace gray \
	"$tmp/noise_small.png"
"$IM" "$tmp/shape_small.png" "$tmp/noise_small.png" "$tmp/inside_small.png" \
	-fx "xpos=$OFF+(i+0.5)*$CELL; pg=clamp((xpos-$OFF)/($NOISE_END-$OFF)); pg=pg*pg*(3-2*pg);
	     nz=clamp((v.r-0.22)/0.78); nz=nz*nz*0.95;
	     (pg*u.r+(1-pg)*nz)*u[2].r" \
	"$tmp/field_small.png"

# Which cells have snapped into the clean sparkle: each row snaps from a
# random x between SNAP0 and SNAP1, so the boundary is a ragged block edge.
"$IM" -seed 23 -size "${GRID}x${GRID}" xc:gray50 +noise Random -colorspace gray \
	-fx "xpos=$OFF+(i+0.5)*$CELL; pg=clamp((xpos-$SNAP0)/($SNAP1-$SNAP0)); u.p{0,j}.r<pg ? 1 : 0" \
	"$tmp/snap_small.png"

# Upscale with nearest neighbour and cut each cell into a rounded square.
"$IM" -size "${CELL}x${CELL}" xc:black -fill white \
	-draw "roundrectangle 3,3 $((CELL - 4)),$((CELL - 4)) 8,8" "$tmp/cell.png"
"$IM" "$tmp/field_small.png" \( "$tmp/snap_small.png" -negate \) -compose multiply -composite \
	-filter point -resize "${INNER}x${INNER}!" \
	\( -compose over -size "${INNER}x${INNER}" tile:"$tmp/cell.png" \) -compose multiply -composite \
	-compose over -bordercolor black -border "$OFF" "$tmp/cells_a.png"
"$IM" "$tmp/snap_small.png" -filter point -resize "${INNER}x${INNER}!" \
	-compose over -bordercolor white -border "$OFF" "$tmp/snap.png"
"$IM" "$tmp/big.png" "$tmp/snap.png" -compose multiply -composite \
	"$tmp/small.png" -compose lighten -composite "$tmp/clean_a.png"

# 4. Glow around the clean shapes.
#    The bright cells near the sparkle glow a little too.
"$IM" "$tmp/cells_a.png" -evaluate pow 2 -evaluate multiply 0.7 "$tmp/clean_a.png" \
	-compose lighten -composite "$tmp/glowsrc.png"
"$IM" "$tmp/glowsrc.png" -blur 0x40 -evaluate multiply 1.5 "$tmp/glow1.png"
"$IM" "$tmp/glowsrc.png" -blur 0x12 -evaluate multiply 1.1 "$tmp/glow2.png"

# Cell colours: cool cyan-lavender at the far left warming to white.
"$IM" -size "${S}x${S}" -define gradient:angle=90 gradient:'#7dd3fc-#f5f3ff' "$tmp/cellcolor.png"

# 5. Compose: background, cells, glows, clean sparkles.
"$IM" "$tmp/bg.png" \
	\( "$tmp/cellcolor.png" "$tmp/cells_a.png" -alpha off -compose copyopacity -composite \) \
	-compose over -composite \
	\( -size "${S}x${S}" xc:'#c084fc' "$tmp/glow1.png" -alpha off -compose copyopacity -composite \) \
	-compose screen -composite \
	\( -size "${S}x${S}" xc:'#f5f3ff' "$tmp/glow2.png" -alpha off -compose copyopacity -composite \) \
	-compose screen -composite \
	\( -size "${S}x${S}" xc:white "$tmp/clean_a.png" -alpha off -compose copyopacity -composite \) \
	-compose over -composite "$tmp/art.png"

# 6. Rounded tile, thin light rim at the top, soft drop shadow.
"$IM" -size "${S}x${S}" xc:black -fill white \
	-draw "roundrectangle $M,$M $((S - M - 1)),$((S - M - 1)) $R,$R" "$tmp/mask.png"
"$IM" "$tmp/mask.png" \( +clone -roll +0+3 -negate \) -compose multiply -composite \
	\( -size "${S}x${S}" gradient:white-black -evaluate multiply 0.35 \) -compose multiply -composite \
	"$tmp/rim.png"
"$IM" "$tmp/art.png" \
	\( -size "${S}x${S}" xc:white "$tmp/rim.png" -alpha off -compose copyopacity -composite \) \
	-compose screen -composite \
	"$tmp/mask.png" -alpha off -compose copyopacity -composite "$tmp/tile.png"
"$IM" "$tmp/mask.png" -blur 0x18 -evaluate multiply 0.45 \
	\( +clone -fill black -colorize 100 \) +swap -alpha off -compose copyopacity -composite \
	-page +0+14 -background none -flatten +repage "$tmp/shadow.png"
"$IM" "$tmp/shadow.png" "$tmp/tile.png" -compose over -composite \
	+repage -define png:color-type=6 "$out"

echo "make-icon: wrote $out"
