#!/usr/bin/env bash
# Sweep benchmark (issue #5): 100 stand-in trials (10 in parallel) and a sequential sweep on the
# embedded engine over Azurite. Installs what it needs; ends with one RESULT line.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
[ -d tools/azurite/node_modules/azurite ] || npm ci --prefix tools/azurite --no-audit --no-fund >/dev/null
dotnet build bench/sweep/SweepBench.csproj -c Release -v quiet -nologo >/dev/null
dotnet bench/sweep/bin/Release/net10.0/MlFunctions.Bench.Sweep.dll "${1:-100}" "${2:-20}"
