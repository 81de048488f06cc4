#!/usr/bin/env bash
# Benchmarks `hubmirror push` of a model directory holding one SIZE-byte file
# (default 1 GiB of random bytes) to a local versitygw against boto3's
# upload_file of the same file to the same server (Debian's python3-boto3 under
# /usr/bin/python3, default TransferConfig).
#
# hubmirror is timed as the whole command, wall clock: process start, the
# hashing pass (sha256 of the file), the verified multipart upload, manifest and
# ref. boto3 is timed around upload_file alone (imports and client setup
# excluded). Each run uploads into a new bucket, so nothing is already there.
# The file is in the page cache for both. RUNS (default 3) runs each; the median
# is reported, and the time of a second push of the same directory (which
# uploads nothing).
#
# Usage: bench/storage_push.sh     (SIZE=.. RUNS=.. PART=16MiB THREADS=4 PY=/usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1073741824}
RUNS=${RUNS:-3}
PART=${PART:-16MiB}
THREADS=${THREADS:-4}
PY=${PY:-/usr/bin/python3}
work=$(mktemp -d)
vgwpid=""
cleanup() {
  if [ -n "$vgwpid" ]; then kill "$vgwpid" 2>/dev/null || true; wait "$vgwpid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/hubmirror" ./cmd/hubmirror
vgw="$(go env GOPATH)/bin/versitygw"
[ -x "$vgw" ] || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0

port=$((20000 + RANDOM % 20000))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((20000 + RANDOM % 20000)); done
mkdir -p "$work/s3" "$work/model"
ROOT_ACCESS_KEY=bench ROOT_SECRET_KEY=bench-secret-key "$vgw" --port "127.0.0.1:$port" posix "$work/s3" >"$work/vgw.log" 2>&1 &
vgwpid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key AWS_REGION=us-east-1
unset AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
head -c "$SIZE" /dev/urandom >"$work/model/model.safetensors"
cat "$work/model/model.safetensors" >/dev/null

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
go_times=() py_times=()
for i in $(seq 1 "$RUNS"); do
  t0=$(now)
  "$work/hubmirror" push "$work/model" "s3://go-$i/mirror" --repo bench/model --part-size "$PART" --threads "$THREADS" >/dev/null
  t1=$(now)
  go_times+=("$(echo "$t1 - $t0" | bc)")
  py_times+=("$("$PY" bench/storage_boto3_upload.py "$work/model/model.safetensors" "boto-$i" model.safetensors)")
  rm -rf "$work/s3/go-$i" "$work/s3/boto-$i" # keep the server's disk use bounded
  sync
done
t0=$(now)
"$work/hubmirror" push "$work/model" "s3://go-again/mirror" --repo bench/model >/dev/null
t1=$(now)
"$work/hubmirror" push "$work/model" "s3://go-again/mirror" --repo bench/model --json >"$work/again.json"
t2=$(now)

go_med=$(printf '%s\n' "${go_times[@]}" | median)
py_med=$(printf '%s\n' "${py_times[@]}" | median)
mb() { echo "scale=1; $SIZE / 1048576 / $1" | bc; }
echo "file: $SIZE bytes; versitygw v1.8.0 on 127.0.0.1:$port; $RUNS runs, median"
echo "hubmirror push (part $PART, threads $THREADS): ${go_med}s  $(mb "$go_med") MiB/s   runs: ${go_times[*]}"
echo "boto3 upload_file ($("$PY" -c 'import boto3; print(boto3.__version__)')): ${py_med}s  $(mb "$py_med") MiB/s   runs: ${py_times[*]}"
echo "speedup (boto3 / hubmirror): $(echo "scale=2; $py_med / $go_med" | bc)x"
echo "second push of the same directory (uploads nothing): $(echo "$t2 - $t1" | bc)s"
grep -o '"uploaded": [0-9]*' "$work/again.json"
