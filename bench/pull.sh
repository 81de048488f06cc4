#!/usr/bin/env bash
# Benchmarks `hubmirror pull` against the test hub (bench/pull_hub): one
# generated file of SIZE bytes (default 1 GiB), served with a per-connection
# bandwidth cap of CAP bytes/s (default 50 MB/s) and without any cap.
#
# For each setting it times, wall clock, whole commands:
#   curl      curl -o /dev/null of the file's CDN URL: one connection, no disk,
#             no hashing (the loopback limit)
#   single    hubmirror pull --connections 1: one connection per file, the way
#             huggingface_hub downloads
#   parallel  hubmirror pull --connections CONNS (default 8) --chunk-size CHUNK
#             (the default: starts with one connection, ramps up while that helps)
#   curl+sha  curl -o FILE, then sha256sum FILE: the same work as a verified
#             download to disk, for reference
# Every pull starts from an empty cache, writes the file to disk, syncs it and
# verifies its sha256. Throughput = SIZE / elapsed. RUNS (default 4) rounds,
# each timing all four in turn; medians of the speeds and of the per-round
# ratios are reported, then every round's figures. Last, the speed of sha256
# on one core (hubclient BenchmarkSHA256): no verified download of one file
# can be faster, so it bounds the no-cap ratio on this machine.
#
# Usage: bench/pull.sh   (env: SIZE, CAP, CONNS, CHUNK, RUNS, CACHE_ROOT, HUBMIRROR_BIN to use a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1073741824}
CAP=${CAP:-50000000}
CONNS=${CONNS:-8}
CHUNK=${CHUNK:-16MiB}
RUNS=${RUNS:-4}
work=$(mktemp -d)
CACHE_ROOT=${CACHE_ROOT:-$work}
hubpid=""
cleanup() {
  if [ -n "$hubpid" ]; then kill "$hubpid" 2>/dev/null || true; wait "$hubpid" 2>/dev/null || true; fi
  rm -rf "$work" "$CACHE_ROOT/pull-bench-cache"
}
trap cleanup EXIT

if [ -n "${HUBMIRROR_BIN:-}" ]; then cp "$HUBMIRROR_BIN" "$work/hubmirror"; else go build -o "$work/hubmirror" ./cmd/hubmirror; fi
go build -o "$work/pull_hub" ./bench/pull_hub

start_hub() { # $1 = cap (0: none)
  if [ -n "$hubpid" ]; then kill "$hubpid"; wait "$hubpid" 2>/dev/null || true; fi
  "$work/pull_hub" -size "$SIZE" -cap "$1" >"$work/hub.out" &
  hubpid=$!
  for _ in $(seq 1 600); do [ "$(wc -l <"$work/hub.out")" -ge 3 ] && break; sleep 0.1; done
  hub_url=$(sed -n 1p "$work/hub.out"); blob_url=$(sed -n 2p "$work/hub.out"); sha=$(sed -n 3p "$work/hub.out")
}

now() { date +%s.%N; }

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

time_curl() {
  local t0 t1
  t0=$(now); curl -sSf -o /dev/null "$blob_url"; t1=$(now)
  echo "$t0 $t1" | awk -v s="$SIZE" '{printf "%.1f\n", s/($2-$1)/1e6}'
}

time_curl_sha() {
  local t0 t1 f="$CACHE_ROOT/pull-bench-cache/curl.bin"
  mkdir -p "$CACHE_ROOT/pull-bench-cache"
  t0=$(now); curl -sSf -o "$f" "$blob_url"; sha256sum "$f" | grep -q "^$sha " || { echo "curl: bad sha256" >&2; exit 1; }; t1=$(now)
  rm -f "$f"
  echo "$t0 $t1" | awk -v s="$SIZE" '{printf "%.1f\n", s/($2-$1)/1e6}'
}

time_pull() { # $1 = connections
  local cache="$CACHE_ROOT/pull-bench-cache" t0 t1
  rm -rf "$cache"
  t0=$(now)
  HF_ENDPOINT=$hub_url HF_TOKEN= HF_HUB_DISABLE_PROGRESS_BARS=1 \
    "$work/hubmirror" pull bench/model --cache-dir "$cache" --connections "$1" --chunk-size "$CHUNK" --json >"$work/pull.json"
  t1=$(now)
  grep -q "\"sha256\": \"$sha\"" "$work/pull.json" || { echo "pull did not report the expected sha256" >&2; exit 1; }
  echo "$t0 $t1" | awk -v s="$SIZE" '{printf "%.1f\n", s/($2-$1)/1e6}'
}

ratio() { echo "$1 $2" | awk '{printf "%.3f\n", $1/$2}'; }

bench() { # $1 = label, $2 = cap
  start_hub "$2"
  local c cs s p cl=() csl=() sl=() pl=() ps=() pc=() sc=()
  # Interleaved, so that the machine's load drifts alike for all of them.
  # single and parallel take turns at going first: on this VM the pull
  # that directly follows another 1 GiB pull was 20-40% slower, whichever
  # it was.
  for r in $(seq 1 "$RUNS"); do
    c=$(time_curl); cs=$(time_curl_sha)
    if [ $((r % 2)) = 1 ]; then s=$(time_pull 1); p=$(time_pull "$CONNS"); else p=$(time_pull "$CONNS"); s=$(time_pull 1); fi
    cl+=("$c"); csl+=("$cs"); sl+=("$s"); pl+=("$p")
    ps+=("$(ratio "$p" "$s")"); pc+=("$(ratio "$p" "$c")"); sc+=("$(ratio "$s" "$c")")
  done
  m() { printf '%s\n' "$@" | median; }
  printf '%-22s curl %7s MB/s | curl+sha %7s | single %7s | parallel(%s) %7s | parallel/single %5.2fx | parallel/curl %5.1f%% | single/curl %5.1f%%\n' \
    "$1" "$(m "${cl[@]}")" "$(m "${csl[@]}")" "$(m "${sl[@]}")" "$CONNS" "$(m "${pl[@]}")" \
    "$(m "${ps[@]}")" "$(echo "$(m "${pc[@]}")" | awk '{print 100*$1}')" "$(echo "$(m "${sc[@]}")" | awk '{print 100*$1}')"
  echo "  runs: curl ${cl[*]} | curl+sha ${csl[*]} | single ${sl[*]} | parallel ${pl[*]} (MB/s)"
  last_curl=$(m "${cl[@]}")
}

echo "file: $SIZE bytes; cache on $(df --output=source,fstype "$CACHE_ROOT" | tail -1); $(nproc) CPUs; median of $RUNS runs"
bench "cap $((CAP / 1000000)) MB/s per conn" "$CAP"
bench "no cap" 0
# The ceiling of any verified download of one file: its sha256 is one
# sequential stream on one core (hubclient BenchmarkSHA256, 1 MiB writes).
kill "$hubpid"; wait "$hubpid" 2>/dev/null || true; hubpid=""
sha_speed=$(go test -run '^$' -bench SHA256 -count 3 ./hubclient/ | awk '/^BenchmarkSHA256/ {print $(NF-1)}' | median)
echo "$sha_speed $last_curl" | awk '{printf "sha256 on one core     %7.1f MB/s = %.1f%% of the no-cap curl median (the most a verified download can reach)\n", $1, 100*$1/$2}'
