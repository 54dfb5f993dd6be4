#!/usr/bin/python3
"""Reference for `promptlearn_bench bo`: Optuna's TPE sampler (the Debian python3-optuna 3.1 package) on the
bench's test functions, printing the same JSON lines as the C++ bench (one object per line).

    /usr/bin/python3 benchmarks/optuna_bo.py [--function branin,hartmann6,...] [--evals 50] [--init 10]
        [--seeds 20]

For each function and seed, TPESampler(seed=seed, n_startup_trials=init) minimises the function over its
box for --evals trials. Metrics over the seeds: median/q25/q75 of the best value found (median_best_value,
q25_best_value, q75_best_value), the same of the simple regret (best - known minimum) and
optimizer_seconds_per_run (wall time of study.optimize minus the time spent inside the objective).
The test functions (FUNCTIONS) are shared with sklearn_gp_bo.py and equal the C++ bench's definitions.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def branin(x):
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * math.cos(x[0]) + s


_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
                  [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x):
    x = np.asarray(x, dtype=float)
    return float(-np.sum(_H6_ALPHA * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


def ackley(x):
    x = np.asarray(x, dtype=float)
    d = len(x)
    return float(-20 * math.exp(-0.2 * math.sqrt(np.sum(x * x) / d)) - math.exp(np.sum(np.cos(2 * math.pi * x)) / d)
                 + 20 + math.e)


def rosenbrock(x):
    return float(sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1)))


def sixhump(x):
    a, b = x[0], x[1]
    return (4 - 2.1 * a * a + a ** 4 / 3) * a * a + a * b + (-4 + 4 * b * b) * b * b


def levy(x):
    w = [1 + (xi - 1) / 4 for xi in x]
    s = math.sin(math.pi * w[0]) ** 2
    for wi in w[:-1]:
        s += (wi - 1) ** 2 * (1 + 10 * math.sin(math.pi * wi + 1) ** 2)
    s += (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    return s


# name: (function, bounds, known minimum)
FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], 0.39788735772973816),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, -3.3223680114155147),
    "ackley2": (ackley, [(-32.768, 32.768)] * 2, 0.0),
    "ackley5": (ackley, [(-32.768, 32.768)] * 5, 0.0),
    "rosenbrock2": (rosenbrock, [(-5.0, 10.0)] * 2, 0.0),
    "sixhump": (sixhump, [(-3.0, 3.0), (-2.0, 2.0)], -1.031628453489877),
    "levy4": (levy, [(-10.0, 10.0)] * 4, 0.0),
}


def emit(impl, function, args, bests, seconds):
    f_min = FUNCTIONS[function][2]
    common = {"bench": "bo", "impl": impl, "function": function, "evals": args.evals, "init": args.init,
              "seeds": args.seeds}
    bests = np.asarray(bests)
    regrets = bests - f_min
    rows = [("median_best_value", np.percentile(bests, 50), "value"),
            ("q25_best_value", np.percentile(bests, 25), "value"),
            ("q75_best_value", np.percentile(bests, 75), "value"),
            ("median_regret", np.percentile(regrets, 50), "value"),
            ("q25_regret", np.percentile(regrets, 25), "value"),
            ("q75_regret", np.percentile(regrets, 75), "value"),
            ("optimizer_seconds_per_run", float(np.mean(seconds)), "s")]
    for metric, value, unit in rows:
        print(json.dumps(dict(common, metric=metric, value=float(value), unit=unit)), flush=True)


def parse_args(doc):
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--function", default="branin,hartmann6")
    p.add_argument("--evals", type=int, default=50)
    p.add_argument("--init", type=int, default=10)
    p.add_argument("--seeds", type=int, default=20)
    return p.parse_known_args()[0]


def main():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args = parse_args(__doc__)
    for name in args.function.split(","):
        f, bounds, _ = FUNCTIONS[name]
        bests, seconds = [], []
        for seed in range(args.seeds):
            spent = [0.0]

            def objective(trial):
                x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]
                t0 = time.perf_counter()
                v = f(x)
                spent[0] += time.perf_counter() - t0
                return v

            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=args.init)
            study = optuna.create_study(direction="minimize", sampler=sampler)
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=args.evals)
            seconds.append(time.perf_counter() - t0 - spent[0])
            bests.append(study.best_value)
        emit(f"optuna_tpe_{optuna.__version__}", name, args, bests, seconds)


if __name__ == "__main__":
    main()
