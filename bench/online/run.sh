#!/usr/bin/env bash
# Online validation benchmark (issue #15, section 3), not a test: a Thompson bandit and an A/B test with label
# feedback over two models of different accuracy, the prediction cache (on vs off) and payload logging (on vs off),
# two staged rollouts (a better challenger promoted, a much worse one rolled back), on the real local host over
# Azurite. Ends with one RESULT line.
# Usage: bench/online/run.sh [bandit requests = 2000] [seconds per throughput point = 8]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
[ -d tools/azurite/node_modules/azurite ] || npm ci --prefix tools/azurite --no-audit --no-fund >/dev/null
dotnet build bench/online/OnlineBench.csproj -c Release -v quiet -nologo >/dev/null
exec dotnet bench/online/bin/Release/net10.0/MlFunctions.Bench.Online.dll "$@"
