"""Median best value per (function, sampler) at 25 and 50 trials from ours.jsonl and optuna.jsonl; one RESULT line."""
import json, statistics, sys

out = sys.argv[1]
rows = [json.loads(line) for name in ("ours.jsonl", "optuna.jsonl") for line in open(f"{out}/{name}")]
problems = {p["name"]: p for p in json.load(open(f"{out}/problems.json"))}
samplers = list(dict.fromkeys(r["sampler"] for r in rows))
median = {}
for r in rows:
    median.setdefault((r["function"], r["sampler"]), {"25": [], "50": []})
    for c in ("25", "50"):
        median[(r["function"], r["sampler"])][c].append(r["best"][c])
median = {k: {c: statistics.median(v) for c, v in cs.items()} for k, cs in median.items()}

print(f"{'function':<11} {'minimum':>9} " + " ".join(f"{s:>14}" for s in samplers))
for f, p in problems.items():
    for c in ("25", "50"):
        print(f"{f + ' @' + c:<11} {p['minimum']:>9.4f} " + " ".join(f"{median[(f, s)][c]:>14.4f}" for s in samplers))

tokens, wins = [], 0
for f in problems:
    optuna = {s: median[(f, s)]["50"] for s in samplers if s.startswith("optuna-")}
    best_name = min(optuna, key=optuna.get)
    auto = median[(f, "auto")]["50"] if (f, "auto") in median else float("nan")
    wins += auto <= optuna[best_name]
    tokens.append(f"{f}_auto={auto:.4g} {f}_best_optuna={optuna[best_name]:.4g}({best_name[7:]})")
sobol_ok = sum(median[(f, "sobol")]["50"] <= median[(f, "random")]["50"] for f in problems) if (next(iter(problems)), "sobol") in median else 0
print(f"RESULT hpo auto_at_or_below_best_optuna_at_50={wins}/{len(problems)} sobol_at_or_below_random_at_50={sobol_ok}/{len(problems)} " + " ".join(tokens))
