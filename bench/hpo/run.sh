#!/usr/bin/env bash
# Sampler benchmark (issue #17): our algorithms (random, sobol, tpe, gp, cmaes, auto) and Optuna's (random,
# TPE, multivariate TPE, CMA-ES, QMC Sobol) on Branin, Hartmann6, Rosenbrock-4 and Ackley-5 with their usual
# bounds, 10 seeds, the same 50-trial budget; median best at 25 and 50 trials, then one RESULT hpo line.
# Usage: bench/hpo/run.sh [seeds] [our algorithms, comma-separated]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# The Debian package installs into the system Python, which a pyenv or venv python3 on PATH would not see.
py=/usr/bin/python3
# Optuna's QMCSampler needs scipy (an optional dependency of the Debian package).
"$py" -c 'import optuna, scipy' 2>/dev/null || apt-get install -y python3-optuna python3-scipy >/dev/null
out=$(mktemp -d /tmp/mlf-bench-hpo-XXXXXX)
dotnet build bench/hpo/HpoBench.csproj -c Release -v quiet -nologo >/dev/null
echo "optuna $("$py" -c 'import optuna; print(optuna.__version__)'), results in $out" >&2
dotnet bench/hpo/bin/Release/net10.0/MlFunctions.Bench.Hpo.dll "$out" "${1:-10}" "${2:-random,sobol,tpe,gp,cmaes,auto}"
"$py" bench/hpo/optuna_side.py "$out" "${1:-10}"
"$py" bench/hpo/report.py "$out"
