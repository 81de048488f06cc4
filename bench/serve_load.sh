#!/usr/bin/env bash
# Puts `hubmirror serve` under load: CLIENTS concurrent clients (default
# 200), REQUESTS requests each (default 20), a mix of model info, recursive
# tree, HEAD, full GETs of a small and a medium (2 MiB) file, 1 MiB range
# GETs of a large (LARGE bytes, default 64 MiB) file and a 404, against a
# local mirror (file://) served with --metrics-addr. Reports the latency
# percentiles per kind and overall, and checks that the server's metrics
# (requests by route, method and code; bytes; latency observations) agree
# with the clients' counts. Exits non-zero on any failed request or
# disagreement. The run is bounded (TIMEOUT, default 5m).
#
# Usage: bench/serve_load.sh    (CLIENTS=.. REQUESTS=.. LARGE=.. MAXCONC=..)
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-200}
REQUESTS=${REQUESTS:-20}
LARGE=${LARGE:-67108864}
MAXCONC=${MAXCONC:-32}
TIMEOUT=${TIMEOUT:-5m}
work=$(mktemp -d)
srvpid=""
cleanup() { if [ -n "$srvpid" ]; then kill "$srvpid" 2>/dev/null || true; wait "$srvpid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/hubmirror" ./cmd/hubmirror
go build -o "$work/serve_load" ./bench/serve_load
mkdir -p "$work/model/sub"
head -c "$LARGE" /dev/urandom >"$work/model/large.bin"
head -c 2097152 /dev/urandom >"$work/model/medium.bin"
echo '{"model_type": "gpt2"}' >"$work/model/config.json"
for i in $(seq 1 50); do echo "file $i" >"$work/model/sub/f$i.txt"; done
"$work/hubmirror" push "$work/model" "file://$work/mirror" --repo bench/model >/dev/null

"$work/hubmirror" serve --from "file://$work/mirror" --addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
  --max-concurrent "$MAXCONC" --quiet --json >"$work/out" 2>"$work/serve.log" &
srvpid=$!
for _ in $(seq 1 100); do [ "$(wc -l <"$work/out")" -ge 2 ] && break; sleep 0.05; done
url=$(head -1 "$work/out")
metrics=$(sed -n 2p "$work/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics_url"])')
echo "serve --max-concurrent $MAXCONC at $url, metrics at $metrics; $(nproc) CPUs"
"$work/serve_load" -url "$url" -metrics "$metrics" -clients "$CLIENTS" -requests "$REQUESTS" -large-size "$LARGE" -timeout "$TIMEOUT"
