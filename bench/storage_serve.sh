#!/usr/bin/env bash
# Benchmarks `hubmirror serve` on one large file (default 1 GiB of random
# bytes) in a local mirror (file://), against reading the same blob from local
# disk. All reads come from the page cache (the file is read once before).
#
#   disk      dd of the blob file to /dev/null (1 MiB blocks)
#   curl_file curl -o /dev/null file://BLOB: the same client reading the
#             local file, no network
#   go_http   curl GET of the blob from net/http's ServeContent (sendfile):
#             the HTTP baseline, what any Go server can do here
#   first     curl GET /resolve of the file from a fresh server: the body
#             streams through sha256 verification (VerifyReader)
#   verified  the same GET again: the blob is known verified (same storage
#             version), so it is sent as is (sendfile)
#   range     curl GET of the second half with a Range header (verified blob)
#   hf_hub    huggingface_hub-style: HEAD then GET with Accept-Encoding:
#             identity (first request to a fresh server)
# Throughput is curl's speed_download (dd's own figure for disk). RUNS
# (default 3) runs each, median reported.
#
# Usage: bench/storage_serve.sh    (SIZE=.. RUNS=..)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1073741824}
RUNS=${RUNS:-3}
work=$(mktemp -d)
srvpid=""
stop_server() { if [ -n "$srvpid" ]; then kill "$srvpid" 2>/dev/null || true; wait "$srvpid" 2>/dev/null || true; srvpid=""; fi; }
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/hubmirror" ./cmd/hubmirror
go build -o "$work/fileserver" ./bench/storage_fileserver
mkdir -p "$work/model"
head -c "$SIZE" /dev/urandom >"$work/model/model.safetensors"
"$work/hubmirror" push "$work/model" "file://$work/mirror" --repo bench/model >/dev/null
blob=$(ls "$work"/mirror/blobs/sha256/*)
cat "$blob" >/dev/null

start_server() {
  stop_server
  "$work/hubmirror" serve --from "file://$work/mirror" --addr 127.0.0.1:0 --quiet >"$work/url" 2>"$work/serve.log" &
  srvpid=$!
  for _ in $(seq 1 100); do [ -s "$work/url" ] && break; sleep 0.05; done
  url="$(head -1 "$work/url")/bench/model/resolve/main/model.safetensors"
}
mibs() { echo "scale=1; $1 / 1048576" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
curl_speed() { curl -sS -o /dev/null -w '%{speed_download}' "$@"; }

disk=() cfile=() gohttp=() first=() verified=() ranged=() hf=()
for i in $(seq 1 "$RUNS"); do
  d=$(dd if="$blob" of=/dev/null bs=1M 2>&1 | awk '/copied/ {print $(NF-1), $NF}')
  case "$d" in
    *GB/s) disk+=("$(echo "${d% *} * 1000000000" | bc)") ;;
    *MB/s) disk+=("$(echo "${d% *} * 1000000" | bc)") ;;
  esac
  cfile+=("$(curl_speed "file://$blob")")
  "$work/fileserver" "$blob" 127.0.0.1:0 >"$work/fsurl" &
  fspid=$!
  for _ in $(seq 1 100); do [ -s "$work/fsurl" ] && break; sleep 0.05; done
  gohttp+=("$(curl_speed "$(head -1 "$work/fsurl")/")")
  kill "$fspid"; wait "$fspid" 2>/dev/null || true
  start_server
  first+=("$(curl_speed "$url")")
  verified+=("$(curl_speed "$url")")
  ranged+=("$(curl_speed -H "Range: bytes=$((SIZE / 2))-" "$url")")
  start_server
  curl -sS -I -H 'Accept-Encoding: identity' "$url" >/dev/null
  hf+=("$(curl_speed -H 'Accept-Encoding: identity' "$url")")
done
stop_server
echo "file: $SIZE bytes, local mirror, page cache warm; $RUNS runs, median MiB/s"
printf '%-10s %8s   runs (bytes/s): %s\n' disk "$(mibs "$(printf '%s\n' "${disk[@]}" | median)")" "${disk[*]}"
printf '%-10s %8s   runs (bytes/s): %s\n' curl_file "$(mibs "$(printf '%s\n' "${cfile[@]}" | median)")" "${cfile[*]}"
printf '%-10s %8s   runs (bytes/s): %s\n' go_http "$(mibs "$(printf '%s\n' "${gohttp[@]}" | median)")" "${gohttp[*]}"
printf '%-10s %8s   runs (bytes/s): %s\n' first "$(mibs "$(printf '%s\n' "${first[@]}" | median)")" "${first[*]}"
printf '%-10s %8s   runs (bytes/s): %s\n' verified "$(mibs "$(printf '%s\n' "${verified[@]}" | median)")" "${verified[*]}"
printf '%-10s %8s   runs (bytes/s): %s\n' range "$(mibs "$(printf '%s\n' "${ranged[@]}" | median)")" "${ranged[*]}"
printf '%-10s %8s   runs (bytes/s): %s\n' hf_hub "$(mibs "$(printf '%s\n' "${hf[@]}" | median)")" "${hf[*]}"
