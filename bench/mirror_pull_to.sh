#!/usr/bin/env bash
# Benchmarks `hubmirror pull REPO --to s3://...`: one SIZE-byte LFS file
# (default 1 GiB of pseudo-random bytes) streamed from the test hub
# (bench/pull_hub; CAP bytes per second per connection, default none, as a
# CDN limits each connection) into a local versitygw, against the two-step
# way (pull into the Hugging Face cache, then push the snapshot).
#
# Timed wall clock, whole commands, RUNS (default 3) rounds, medians:
#   curl       curl -o /dev/null of the file's CDN URL (the loopback limit of
#              the hub, one connection, no hashing, no storage)
#   pull --to  hubmirror pull bench/model --to s3://pt-i/mirror: 8 MiB byte
#              ranges over 8 connections from the hub, handed out in order,
#              verified by the hub client and by storage, 16 MiB parts, 4 in
#              flight; nothing on local disk
#   pull --to --connections 1   the same over one connection from the hub
#   two-step   hubmirror pull bench/model (into an empty cache, parallel
#              ranges) + hubmirror push bench/model s3://ts-i/mirror (from the
#              cache: the sha256 is known, so no hashing pass)
# and the time of a second pull --to (downloads and uploads nothing).
#
# Usage: bench/mirror_pull_to.sh   (env: SIZE, RUNS, CAP, CACHE_ROOT)
#
# With FILES=N it measures instead the cost per small file of `hubmirror pull
# datasets/bench/ds --to DIR` into a local directory (the store's fsyncs and
# file operations): the test hub serves a dataset of N files of about 100 bytes
# (bench/dataset_hub -lfs 0); RUNS (default 3) pulls into a new directory each,
# wall clock, median, and the median per file. With STRACE=1 one more pull runs
# under strace -f -c and the fsync, fdatasync, openat, renameat, mkdirat and
# unlinkat calls per file are printed.
#
# Usage: FILES=2000 bench/mirror_pull_to.sh   (env: RUNS, STRACE)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${FILES:-}" ]; then
  RUNS=${RUNS:-3}
  work=$(mktemp -d)
  hubpid=""
  trap 'if [ -n "$hubpid" ]; then kill "$hubpid" 2>/dev/null || true; wait "$hubpid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
  go build -o "$work/hubmirror" ./cmd/hubmirror
  go build -o "$work/dataset_hub" ./bench/dataset_hub
  "$work/dataset_hub" -files "$FILES" -lfs 0 >"$work/hub.out" &
  hubpid=$!
  for _ in $(seq 1 600); do [ "$(wc -l <"$work/hub.out")" -ge 2 ] && break; sleep 0.1; done
  export HF_ENDPOINT="$(sed -n 1p "$work/hub.out")" HF_HUB_DISABLE_PROGRESS_BARS=1 HF_TOKEN=
  unset HF_HUB_OFFLINE
  ts=()
  for i in $(seq 1 "$RUNS"); do
    t0=$(date +%s.%N)
    "$work/hubmirror" pull datasets/bench/ds --to "$work/mirror-$i" >/dev/null
    t1=$(date +%s.%N)
    ts+=("$(echo "$t1 - $t0" | bc)")
    rm -rf "$work/mirror-$i"
    sync
  done
  m=$(printf '%s\n' "${ts[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  fs=$(df -T "$work" | awk 'NR==2 {print $2}')
  echo "pull --to DIR of $FILES small files ($fs, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)): ${m}s median, $(echo "$m $FILES" | awk '{printf "%.2f", $1*1000/$2}') ms per file; runs: ${ts[*]}"
  if [ "${STRACE:-}" = 1 ]; then
    strace -f -c -o "$work/strace.txt" "$work/hubmirror" pull datasets/bench/ds --to "$work/mirror-s" >/dev/null
    for sc in fsync fdatasync openat renameat mkdirat unlinkat; do
      awk -v sc="$sc" -v n="$FILES" '$NF == sc {c = ($4 ~ /^[0-9]+$/) ? $4 : $3; printf "  %-10s %8d calls, %.2f per file\n", sc, c, c/n}' "$work/strace.txt"
    done
  fi
  exit 0
fi

SIZE=${SIZE:-1073741824}
RUNS=${RUNS:-3}
CAP=${CAP:-0}
work=$(mktemp -d)
CACHE_ROOT=${CACHE_ROOT:-$work}
hubpid="" vgwpid=""
cleanup() {
  for p in $hubpid $vgwpid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "$CACHE_ROOT/pull-to-bench-cache"
}
trap cleanup EXIT

go build -o "$work/hubmirror" ./cmd/hubmirror
go build -o "$work/pull_hub" ./bench/pull_hub
vgw="$(go env GOPATH)/bin/versitygw"
[ -x "$vgw" ] || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0

"$work/pull_hub" -size "$SIZE" -cap "$CAP" >"$work/hub.out" &
hubpid=$!
for _ in $(seq 1 600); do [ "$(wc -l <"$work/hub.out")" -ge 3 ] && break; sleep 0.1; done
hub_url=$(sed -n 1p "$work/hub.out"); blob_url=$(sed -n 2p "$work/hub.out")

port=$((20000 + RANDOM % 20000))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((20000 + RANDOM % 20000)); done
mkdir -p "$work/s3"
ROOT_ACCESS_KEY=bench ROOT_SECRET_KEY=bench-secret-key "$vgw" --port "127.0.0.1:$port" posix "$work/s3" >"$work/vgw.log" 2>&1 &
vgwpid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_REGION=us-east-1
export HF_ENDPOINT="$hub_url" HF_HUB_DISABLE_PROGRESS_BARS=1 HF_TOKEN=
unset AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN HF_HUB_OFFLINE

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mibs() { echo "$1" | awk -v s="$SIZE" '{printf "%.1f", s/$1/1048576}'; }
curl_t=() to_t=() one_t=() two_t=()
for i in $(seq 1 "$RUNS"); do
  t0=$(now); curl -sSf -o /dev/null "$blob_url"; t1=$(now)
  curl_t+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); "$work/hubmirror" pull bench/model --to "s3://pt-$i/mirror" >/dev/null; t1=$(now)
  to_t+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); "$work/hubmirror" pull bench/model --to "s3://p1-$i/mirror" --connections 1 >/dev/null; t1=$(now)
  one_t+=("$(echo "$t1 - $t0" | bc)")
  rm -rf "$work/s3/p1-$i"
  cache="$CACHE_ROOT/pull-to-bench-cache/$i"
  t0=$(now)
  "$work/hubmirror" pull bench/model --cache-dir "$cache" >/dev/null
  "$work/hubmirror" push bench/model "s3://ts-$i/mirror" --cache-dir "$cache" >/dev/null
  t1=$(now)
  two_t+=("$(echo "$t1 - $t0" | bc)")
  if [ "$i" != 1 ]; then rm -rf "$work/s3/pt-$i"; fi
  rm -rf "$work/s3/ts-$i" "$cache"
  sync
done
t0=$(now); "$work/hubmirror" pull bench/model --to "s3://pt-1/mirror" --json >"$work/again.json"; t1=$(now)
again=$(echo "$t1 - $t0" | bc)

c=$(printf '%s\n' "${curl_t[@]}" | median)
p=$(printf '%s\n' "${to_t[@]}" | median)
w=$(printf '%s\n' "${two_t[@]}" | median)
o=$(printf '%s\n' "${one_t[@]}" | median)
capped="no cap"; [ "$CAP" != 0 ] && capped="$CAP B/s per connection"
echo "file: $SIZE bytes; test hub (bench/pull_hub, $capped); versitygw v1.8.0 on 127.0.0.1:$port; $RUNS runs, median; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "curl of the CDN URL to /dev/null:   ${c}s  $(mibs "$c") MiB/s   runs: ${curl_t[*]}"
echo "hubmirror pull --to s3:           ${p}s  $(mibs "$p") MiB/s   runs: ${to_t[*]}"
echo "pull --to s3 --connections 1:     ${o}s  $(mibs "$o") MiB/s   runs: ${one_t[*]}"
echo "hubmirror pull + push (two-step): ${w}s  $(mibs "$w") MiB/s   runs: ${two_t[*]}"
echo "second pull --to (nothing to do): ${again}s  $(grep -o '"downloaded_bytes": [0-9]*' "$work/again.json")"
