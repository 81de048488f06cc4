#!/usr/bin/env bash
# Peak memory (RSS) of hubmirror on a dataset of many small files: FILES
# (default 20,000) files of about 100 bytes under data/{train,test,
# validation}/part-NN/ plus two 1 MiB LFS files, served by the test hub
# (bench/dataset_hub). Measures, each as its own process:
#   pull        hubmirror pull datasets/bench/ds   (into an empty HF cache)
#   pull --to   hubmirror pull datasets/bench/ds --to DIR   (a local mirror)
#   ls          hubmirror ls DIR                   (the whole mirror)
#   ls REPO     hubmirror ls DIR datasets/bench/ds
#   serve       hubmirror serve --from DIR, peak while a client walks the
#               whole recursive tree page by page (Link rel="next"), then
#               every directory's own listing of one split
# with /usr/bin/time -v ("Maximum resident set size") where it exists, else
# VmHWM of /proc/PID/status read just before the process ends; serve's is
# VmHWM after the walk. Also prints each command's wall time.
#
# Usage: bench/dataset_rss.sh   (env: FILES)
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=${FILES:-20000}
work=$(mktemp -d)
hubpid="" srvpid=""
cleanup() {
  for p in $srvpid $hubpid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/hubmirror" ./cmd/hubmirror
go build -o "$work/dataset_hub" ./bench/dataset_hub

"$work/dataset_hub" -files "$FILES" >"$work/hub.out" &
hubpid=$!
for _ in $(seq 1 600); do [ "$(wc -l <"$work/hub.out")" -ge 2 ] && break; sleep 0.1; done
hub_url=$(sed -n 1p "$work/hub.out")
export HF_ENDPOINT="$hub_url" HF_HOME="$work/hf" HF_HUB_DISABLE_PROGRESS_BARS=1 HF_TOKEN=
unset HF_HUB_OFFLINE HF_HUB_CACHE

# peak CMD...: runs CMD (stdout to $work/last.out), prints "<peak KiB> <seconds>".
peak() {
  local t0 t1 kb
  t0=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$work/time.out" "$@" >"$work/last.out"
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.out")
  else
    "$@" >"$work/last.out" &
    local pid=$! hwm=0 v
    while kill -0 "$pid" 2>/dev/null; do
      v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      [ -n "$v" ] && [ "$v" -gt "$hwm" ] && hwm=$v
      sleep 0.02
    done
    wait "$pid"
    kb=$hwm
  fi
  t1=$(date +%s.%N)
  echo "$kb $(echo "$t1 - $t0" | bc)"
}
row() { printf '%-44s %7.1f MiB  %6.2fs\n' "$1" "$(echo "$2" | awk '{print $1/1024}')" "$(echo "$2" | awk '{print $2}')"; }

echo "dataset: $FILES small files + 2 x 1 MiB LFS (bench/dataset_hub); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
r=$(peak "$work/hubmirror" pull datasets/bench/ds); row "hubmirror pull datasets/bench/ds" "$r"
n=$(find "$(tail -1 "$work/last.out")" -type l -o -type f | wc -l)
[ "$n" -eq $((FILES + 2)) ] || { echo "pull: $n files in the snapshot, want $((FILES + 2))" >&2; exit 1; }
r=$(peak "$work/hubmirror" pull datasets/bench/ds --to "$work/mirror"); row "hubmirror pull datasets/bench/ds --to DIR" "$r"
r=$(peak "$work/hubmirror" pull datasets/bench/ds --to "$work/mirror"); row "  again (nothing to do)" "$r"
r=$(peak "$work/hubmirror" ls "$work/mirror"); row "hubmirror ls DIR" "$r"
r=$(peak "$work/hubmirror" ls "$work/mirror" datasets/bench/ds --json); row "hubmirror ls DIR datasets/bench/ds --json" "$r"

"$work/hubmirror" serve --from "$work/mirror" --addr 127.0.0.1:0 --quiet >"$work/serve.out" 2>"$work/serve.log" &
srvpid=$!
for _ in $(seq 1 100); do [ -s "$work/serve.out" ] && break; sleep 0.05; done
url=$(head -1 "$work/serve.out")
hwm() { awk '/VmHWM/ {print $2}' "/proc/$srvpid/status"; }
start_kb=$(hwm)
t0=$(date +%s.%N)
walk=$("$work/dataset_hub" -walk "$url/api/datasets/bench/ds/tree/main?recursive=true&expand=true")
for d in $(seq -f '%02g' 0 $(((FILES - 1) / 1000))); do
  "$work/dataset_hub" -walk "$url/api/datasets/bench/ds/tree/main/data/train/part-$d" >/dev/null
done
t1=$(date +%s.%N)
case "$walk" in *" $((FILES + 2)) files,"*) ;; *) echo "tree walk through serve: $walk, want $((FILES + 2)) files" >&2; exit 1 ;; esac
row "serve: recursive tree walk ($walk)" "$(hwm) $(echo "$t1 - $t0" | bc)"
echo "serve at start: $(echo "$start_kb" | awk '{printf "%.1f", $1/1024}') MiB"
