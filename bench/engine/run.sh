#!/usr/bin/env bash
# Engine benchmark (issue #2): FanOutProbe of 100 and 1,000 activities and a 10-step sequential probe
# on the embedded engine over Azurite. Installs what it needs; ends with one RESULT line.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
[ -d tools/azurite/node_modules/azurite ] || npm ci --prefix tools/azurite --no-audit --no-fund >/dev/null
dotnet build bench/engine/EngineBench.csproj -c Release -v quiet -nologo >/dev/null
dotnet bench/engine/bin/Release/net10.0/MlFunctions.Bench.Engine.dll "${1:-3}"
