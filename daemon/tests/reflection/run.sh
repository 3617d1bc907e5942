#!/usr/bin/env bash
# Starts a one-validator testnet with the release binary and runs the
# independent reflection client against its API. Needs grpcio,
# grpcio-reflection and protobuf (`.ci/run` installs them from PyPI).
set -euo pipefail
binary=${1:-target/release/shieldx}
dir=$(mktemp -d)
port=$((30000 + RANDOM % 20000))
cleanup() {
    if [[ -n "${pid:-}" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
"$binary" node testnet --validators 1 --dir "$dir/net" --base-port "$port" >/dev/null
"$binary" node start --config "$dir/net/node0/config.toml" 2>"$dir/node.log" &
pid=$!
read_token=$(sed -n 's/^read = "\(.*\)"$/\1/p' "$dir/net/api-tokens.toml")
submit_token=$(sed -n 's/^submit = "\(.*\)"$/\1/p' "$dir/net/api-tokens.toml")
if ! python3 "$(dirname "$0")/client.py" "127.0.0.1:$((port + 100))" "$read_token" "$submit_token"; then
    tail -20 "$dir/node.log"
    exit 1
fi
# Graceful shutdown: SIGTERM drains and exits 0.
kill -TERM "$pid"
wait "$pid"
status=$?
pid=
if [[ $status -ne 0 ]]; then echo "node exited $status after SIGTERM"; exit 1; fi
echo "node stopped cleanly on SIGTERM"
