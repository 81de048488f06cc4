#!/usr/bin/env bash
# The forward-pass benchmarks: Go (forward/bench_test.go) and PyTorch
# (bench/forward_torch.py) on the same shapes and thread counts (1 and 2),
# then the peak-memory check (bench/forward_memory.sh).
#
#   bash bench/forward.sh                  # RUNS=5 by default
#
# Debian's python3-torch does its matrix products through libblas.so.3, which
# is the reference (netlib) BLAS unless an optimized one is installed. Set
# OPENBLAS_DIR to a directory holding OpenBLAS's libblas.so.3 to time torch
# with it as well, without installing it system-wide:
#
#   apt-get download libopenblas0-pthread && dpkg-deb -x libopenblas0-pthread_*.deb ob
#   OPENBLAS_DIR=$PWD/ob/usr/lib/x86_64-linux-gnu/openblas-pthread bash bench/forward.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
echo "== Go: go test ./forward -run '^\$' -bench 'BertBase|Layer' -benchtime ${runs}x"
go test ./forward -run '^$' -bench 'BertBase|Layer' -benchtime "${runs}x"
for t in 1 2; do
  echo "== PyTorch ($(/usr/bin/python3 -c 'import torch; print(torch.__config__.show())' | grep -o 'BLAS_INFO=[a-z]*'), libblas.so.3 as installed), $t thread(s)"
  OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t /usr/bin/python3 bench/forward_torch.py --runs "$runs" --threads "$t"
  if [ -n "${OPENBLAS_DIR:-}" ]; then
    echo "== PyTorch with OpenBLAS from $OPENBLAS_DIR, $t thread(s)"
    LD_LIBRARY_PATH=$OPENBLAS_DIR OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t \
      /usr/bin/python3 bench/forward_torch.py --runs "$runs" --threads "$t"
  fi
done
echo "== memory: bash bench/forward_memory.sh"
bash bench/forward_memory.sh
