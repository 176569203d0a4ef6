#!/usr/bin/env bash
# Copies the browser libraries pinned in package.json / package-lock.json from the npm
# registry into static/vendor/, where Django serves them like our own files (no CDN).
# static/vendor/ and node_modules/ are build output: gitignored, rebuilt by `make install`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null; then
  echo "vendor-static: npm is needed to install the terminal widget (apt-get install npm)" >&2
  exit 1
fi

npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

target=static/vendor/xterm
rm -rf "$target"
mkdir -p "$target"
cp node_modules/@xterm/xterm/lib/xterm.js "$target/xterm.js"
cp node_modules/@xterm/xterm/css/xterm.css "$target/xterm.css"
cp node_modules/@xterm/addon-fit/lib/addon-fit.js "$target/addon-fit.js"
# The scripts name their source maps: collectstatic's manifest storage (production) refuses
# to collect a file whose references are missing.
cp node_modules/@xterm/xterm/lib/xterm.js.map "$target/xterm.js.map"
cp node_modules/@xterm/addon-fit/lib/addon-fit.js.map "$target/addon-fit.js.map"
cp node_modules/@xterm/xterm/LICENSE "$target/LICENSE"
echo "vendor-static: xterm.js $(node -p 'require("./node_modules/@xterm/xterm/package.json").version') in $target"
