#!/usr/bin/env bash
# Serving benchmark (issue #4, section 4), not a test: the MNIST MLP, the MNIST CNN and a heavier CNN served by
# (a) our KServe V2 endpoint on the local host, JSON, 1 instance/request; (b) the same, binary tensors, 64/request;
# (c) a hand-written minimal ASP.NET Core + ONNX Runtime endpoint; (d) raw in-process ONNX Runtime at batch 64.
# Closed-loop load from C# clients; (a) vs (c) at concurrency 1, 16, 64 and (b) vs (d) at 16.
# Installs what it needs (Azurite's node modules, the Release build). Ends with one RESULT line.
# Usage: bench/serving/run.sh [seconds per point = 20] [warm-up seconds = clamp(seconds/5, 1, 3)]
#          [--models mnist-mlp,mnist-cnn,heavy-cnn] [--Serving:DefaultBatching:MaxLatency 00:00:00.010 ...]
#        (other --Key value pairs override the host configuration the benchmark sets)
#        bench/serving/run.sh 3      # a quick smoke run
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
[ -d tools/azurite/node_modules/azurite ] || npm ci --prefix tools/azurite --no-audit --no-fund >/dev/null
dotnet build bench/serving/ServingBench.csproj -c Release -v quiet -nologo >/dev/null
[ $# -gt 0 ] || set -- 20
exec dotnet bench/serving/bin/Release/net10.0/MlFunctions.Bench.Serving.dll "$@"
