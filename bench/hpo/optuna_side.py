"""Optuna's samplers on the problems the C# side wrote (issue #17): same functions, bounds, budget, seeds.

Usage: python3 optuna_side.py <out folder> [seeds]. Reads problems.json, checks these definitions
against its probe values, writes optuna.jsonl (one line per sampler, function, seed).
"""
import json, math, sys, time, warnings
import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore")  # QMCSampler and multivariate TPE are "experimental" in 3.1

def branin(x):
    a, b, c, r, s, t = 1, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s

def hartmann6(x):
    alpha = [1.0, 1.2, 3.0, 3.2]
    A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
    P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
    return -sum(alpha[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6))) for i in range(4))

def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))

def ackley(x):
    n = len(x)
    return (-20 * math.exp(-0.2 * math.sqrt(sum(v * v for v in x) / n))
            - math.exp(sum(math.cos(2 * math.pi * v) for v in x) / n) + 20 + math.e)

FUNCTIONS = {"branin": branin, "hartmann6": hartmann6, "rosenbrock": rosenbrock, "ackley": ackley}

SAMPLERS = {
    "optuna-random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "optuna-tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "optuna-tpe-mv": lambda seed: optuna.samplers.TPESampler(seed=seed, multivariate=True),
    "optuna-cmaes": lambda seed: optuna.samplers.CmaEsSampler(seed=seed),
    "optuna-sobol": lambda seed: optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed),
}

def main():
    out = sys.argv[1]
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    checkpoints = [25, 50]
    problems = json.load(open(f"{out}/problems.json"))
    for p in problems:
        for probe in p["probes"]:
            mine = FUNCTIONS[p["name"]](probe["x"])
            assert abs(mine - probe["value"]) <= 1e-9 * max(1, abs(mine)), (p["name"], mine, probe["value"])
    with open(f"{out}/optuna.jsonl", "w") as results:
        for name, make in SAMPLERS.items():
            for p in problems:
                f, bounds = FUNCTIONS[p["name"]], p["bounds"]
                started = time.time()
                for seed in range(seeds):
                    study = optuna.create_study(sampler=make(seed), direction="minimize")
                    study.optimize(lambda t: f([t.suggest_float(f"x{i + 1}", lo, hi) for i, (lo, hi) in enumerate(bounds)]),
                                   n_trials=max(checkpoints))
                    values = [t.value for t in study.trials]
                    best = {str(c): min(values[:c]) for c in checkpoints}
                    results.write(json.dumps({"side": "optuna", "sampler": name, "function": p["name"], "seed": seed, "best": best}) + "\n")
                print(f"  {name:<14} {p['name']:<11} {time.time() - started:6.1f} s for {seeds} seeds", file=sys.stderr)

main()
