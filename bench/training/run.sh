#!/usr/bin/env bash
# Training throughput benchmark (issue #3), not a test: MLP and CNN on MNIST, batch 64, Adam, 2 threads.
# Compares samples/s of the worker's training loop, a bare TorchSharp loop and Debian's PyTorch 1.13 on the same
# model and data, in alternating runs (the order flips every round, so drift in machine load hits all three alike),
# and reports medians. Installs what it needs. Ends with one RESULT line.
# Usage: bench/training/run.sh [rounds=5] [mlp samples=10000] [cnn samples=4000]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
rounds=${1:-5}
n_mlp=${2:-10000}
n_cnn=${3:-4000}
threads=2
datasets="$root/../shared/datasets"

# Debian's PyTorch lives in the system interpreter (a pyenv python3 earlier on PATH would not see it).
py=/usr/bin/python3
if ! $py -c "import torch, numpy" 2>/dev/null; then
  echo "installing python3-torch (Debian's PyTorch)..." >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y python3-torch python3-numpy >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y python3-torch python3-numpy >/dev/null; }
fi
dotnet build bench/training/TrainingBench.csproj -c Release -v quiet -nologo >/dev/null
bench_dll=bench/training/bin/Release/net10.0/linux-x64/MlFunctions.Bench.Training.dll

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order=worker,bare; else order=bare,worker; fi
  if ((r % 2)); then
    dotnet "$bench_dll" "$datasets" "$n_mlp" "$n_cnn" "$threads" "$order" | tee -a "$out"
    $py bench/training/pytorch_bench.py "$datasets" "$n_mlp" "$n_cnn" "$threads" | tee -a "$out"
  else
    $py bench/training/pytorch_bench.py "$datasets" "$n_mlp" "$n_cnn" "$threads" | tee -a "$out"
    dotnet "$bench_dll" "$datasets" "$n_mlp" "$n_cnn" "$threads" "$order" | tee -a "$out"
  fi
done

python3 - "$out" <<'PY'
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    if line.startswith("RATE "):
        _, model, impl, value = line.split()
        rates.setdefault((model, impl), []).append(float(value))
med = {k: statistics.median(v) for k, v in rates.items()}
print(f"{'model':5} {'worker':>10} {'bare':>10} {'pytorch':>10}   worker/bare  bare/pytorch  worker/pytorch  (median samples/s)")
for m in ("mlp", "cnn"):
    w, b, p = med[(m, "worker")], med[(m, "bare")], med[(m, "pytorch")]
    print(f"{m:5} {w:10.0f} {b:10.0f} {p:10.0f}   {w / b:11.3f}  {b / p:12.3f}  {w / p:14.3f}")
# The TorchSharp-vs-PyTorch figure is the worker's (what a job gets) against PyTorch.
print("RESULT training mlp_worker_vs_bare=%.3f cnn_worker_vs_bare=%.3f mlp_vs_pytorch=%.3f cnn_vs_pytorch=%.3f" % (
    med[("mlp", "worker")] / med[("mlp", "bare")], med[("cnn", "worker")] / med[("cnn", "bare")],
    med[("mlp", "worker")] / med[("mlp", "pytorch")], med[("cnn", "worker")] / med[("cnn", "pytorch")]))
PY
