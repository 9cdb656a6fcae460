#!/usr/bin/env bash
# Regenerates the map labels' glyphs (signed-distance-field font ranges as PBF, what MapLibre GL asks for):
# Noto Sans Regular (npm @fontsource/noto-sans, SIL Open Font License 1.1, Latin subset: every character of
# French place names) rendered by fontnik (npm, BSD-2-Clause; its npm package ships the native binary).
# Run it by hand when changing the font; its output is committed. Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")"
FONTNIK=fontnik@0.7.7
FONT=@fontsource/noto-sans@5.3.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent "$FONTNIK" "$FONT")
out="Noto Sans Regular"
rm -rf "$out" && mkdir "$out"
node "$work/node_modules/fontnik/bin/build-glyphs" \
    "$work/node_modules/@fontsource/noto-sans/files/noto-sans-latin-400-normal.woff" "$out"
cp "$work/node_modules/@fontsource/noto-sans/LICENSE" "$out/LICENSE"
cp "$work/node_modules/fontnik/LICENSE.txt" LICENSE.fontnik
echo "$(ls "$out" | grep -c pbf) ranges written to static/glyphs/$out"
