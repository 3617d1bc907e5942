#!/usr/bin/env bash
# Builds the Hyperscan peer and runs the detection bench beside it.
#   apt-get install -y libhyperscan-dev   (Debian; benches only)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
gcc -O2 -o "$here/hs_bench" "$here/hs_bench.c" -lhs
SHIELDX_HYPERSCAN="$here/hs_bench" cargo bench -p shieldx-benches --bench detect -- "$@"
