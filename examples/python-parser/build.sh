#!/usr/bin/env bash
# Build the Python parser (src/app.py) into a WebAssembly component for Antenna's plugin
# contract: WIT antenna:normalizer@0.1.0 in ../../wit/since_v0.1.0, world `normalizer`.
#
#   ./build.sh [OUTPUT.wasm]      (default: build/python-parser.wasm)
#
# Needs componentize-py (tested with 0.25.1): pip install componentize-py==0.25.1
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build/python-parser.wasm}"

if ! command -v componentize-py >/dev/null 2>&1; then
    echo "componentize-py is not installed; install it with: pip install componentize-py==0.25.1" >&2
    exit 127
fi

mkdir -p "$(dirname "$out")"
# The bindings (wit_world) are generated from the WIT on the fly; src/ is the module path.
componentize-py -d "$here/../../wit/since_v0.1.0" -w normalizer componentize -p "$here/src" app -o "$out"
echo "built $out ($(wc -c <"$out") bytes)"
