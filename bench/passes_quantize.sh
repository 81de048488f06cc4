#!/usr/bin/env bash
# Throughput of the int8 quantization against the machine's memory copy
# bandwidth, and the forward pass of an int8 model against the f32 one
# (issue 6):
#
#   bash bench/passes_quantize.sh            # COUNT=5 repetitions by default
#
#   go test ./quantize -run '^$' -bench 'MemoryCopy|QuantizeInt8' -benchtime 20x -count $COUNT
#   go test ./internal/kernels -run '^$' -bench 'Int8Kernels' -count $COUNT
#   go test ./quantize -run '^$' -bench 'ForwardInt8VsF32' -benchtime 10x -count $COUNT
#
# and prints, per benchmark, the median and the best of the repetitions, and
# the ratios of the medians: quantization GB/s of input over copy GB/s (the
# same thread count), int8 forward time over f32 forward time. The machine
# is shared (2 cores): the load average is printed, and the best of the
# repetitions is the figure least disturbed by the other users.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
out=bench/out/passes-quantize
mkdir -p "$out"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
go test ./quantize -run '^$' -bench 'MemoryCopy|QuantizeInt8' -benchtime 20x -count "$count" | tee "$out/throughput.txt"
go test ./internal/kernels -run '^$' -bench 'Int8Kernels/(absmax|quantizeRun|quantizeGroups128)/' -count "$count" | tee "$out/kernels.txt"
go test ./quantize -run '^$' -bench 'ForwardInt8VsF32' -benchtime 10x -count "$count" | tee "$out/forward.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

summarize() { # file, field: 'MB/s' or 'ns/op'
  awk -v field="$2" '
    /^Benchmark/ {
      name=$1; sub(/-[0-9]+$/, "", name)
      for (i=2; i<=NF; i++) if ($(i+1) == field) v[name]=v[name] " " $i
    }
    END {
      for (n in v) {
        k=split(substr(v[n], 2), a, " ")
        for (i=1; i<=k; i++) for (j=i+1; j<=k; j++) if (a[j]+0 < a[i]+0) {t=a[i]; a[i]=a[j]; a[j]=t}
        med=(k%2) ? a[(k+1)/2] : (a[k/2]+a[k/2+1])/2
        best=(field=="MB/s") ? a[k] : a[1]
        printf "%s %s %s %d\n", n, med, best, k
      }
    }' "$1" | sort
}

echo
echo "== throughput, GB/s of input (median / best of $count)"
summarize "$out/throughput.txt" MB/s >"$out/throughput.sum"
summarize "$out/kernels.txt" MB/s >>"$out/throughput.sum"
awk '{printf "%-70s %6.2f / %6.2f\n", $1, $2/1000, $3/1000}' "$out/throughput.sum"
echo
echo "== quantization / copy (medians; copy with the same number of threads)"
awk '
  /^BenchmarkMemoryCopy\/threads=/ {split($1, p, "threads="); copy[p[2]]=$2; copybest[p[2]]=$3}
  /^BenchmarkQuantizeInt8\// {q[$1]=$2; qb[$1]=$3}
  END {
    for (n in q) {
      match(n, /threads=[0-9]+/); t=substr(n, RSTART+8, RLENGTH-8)
      printf "%-70s %5.0f%% of copy (best: %5.0f%% of best copy)\n", n, 100*q[n]/copy[t], 100*qb[n]/copybest[t]
    }
  }' "$out/throughput.sum" | sort
echo
echo "== forward pass, ms per run (median / best of $count), int8 / f32 (medians)"
summarize "$out/forward.txt" ns/op >"$out/forward.sum"
awk '
  {split($1, p, "/"); seq=p[2]; model=p[3]; med[seq "/" model]=$2; best[seq "/" model]=$3; seqs[seq]=1; models[model]=1}
  END {
    for (s in seqs) for (m in models) if ((s "/" m) in med)
      printf "%-12s %-10s %8.2f / %8.2f ms   int8/f32 %.2f\n", s, m, med[s "/" m]/1e6, best[s "/" m]/1e6, med[s "/" m]/med[s "/f32"]
  }' "$out/forward.sum" | sort
