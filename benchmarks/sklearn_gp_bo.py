#!/usr/bin/python3
"""Reference for `promptlearn_bench bo`: Bayesian optimisation with scikit-learn's GaussianProcessRegressor
(Matern 5/2 with per-dimension length scales, hyperparameters by maximum marginal likelihood with restarts)
and expected improvement maximised by multi-start L-BFGS-B (scipy), printing the same JSON lines as the
C++ bench.

    /usr/bin/python3 benchmarks/sklearn_gp_bo.py [--function branin,hartmann6] [--evals 50] [--init 10]
        [--seeds 20] [--gp-restarts 3] [--ei-starts 5]

Per seed: --init uniform random points in the box (mapped to [0, 1]^d), then per iteration the GP
(ConstantKernel * Matern(nu=2.5, ARD) + WhiteKernel, normalize_y, --gp-restarts optimiser restarts) is fitted
and EI (Jones et al. 1998, xi = 0) is maximised by L-BFGS-B (finite-difference gradients) from the
--ei-starts best of 1000 uniform random points.
Metrics as in optuna_bo.py (optimizer_seconds_per_run excludes the objective's time).
"""
import os

os.environ["OMP_NUM_THREADS"] = "1"

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel  # noqa: E402

from optuna_bo import FUNCTIONS, emit, parse_args  # noqa: E402


def extra_args():
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--gp-restarts", type=int, default=3)
    p.add_argument("--ei-starts", type=int, default=5)
    return p.parse_known_args()[0]


def expected_improvement(gp, X, best):
    mu, sd = gp.predict(np.atleast_2d(X), return_std=True)
    sd = np.maximum(sd, 1e-12)
    z = (best - mu) / sd
    return (best - mu) * norm.cdf(z) + sd * norm.pdf(z)


def run(f, bounds, evals, init, seed, gp_restarts, ei_starts):
    rng = np.random.default_rng(seed)
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    d = len(bounds)
    spent = 0.0
    X, y = [], []

    def evaluate(u):
        nonlocal spent
        t0 = time.perf_counter()
        v = f(lo + u * (hi - lo))
        spent += time.perf_counter() - t0
        X.append(u)
        y.append(v)

    t_start = time.perf_counter()
    for u in rng.random((init, d)):
        evaluate(u)
    while len(y) < evals:
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(d), (1e-2, 1e2), nu=2.5) + \
            WhiteKernel(1e-6, (1e-9, 1e-1))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=gp_restarts,
                                      random_state=int(rng.integers(1 << 31)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(np.array(X), np.array(y))
        best = min(y)
        cand = rng.random((1000, d))
        ei = expected_improvement(gp, cand, best)
        starts = cand[np.argsort(-ei)[:ei_starts]]
        best_u, best_ei = starts[0], -np.inf
        for s in starts:
            r = minimize(lambda u: -expected_improvement(gp, u, best)[0], s, method="L-BFGS-B",
                         bounds=[(0.0, 1.0)] * d)
            if -r.fun > best_ei:
                best_u, best_ei = np.clip(r.x, 0, 1), -r.fun
        evaluate(best_u)
    return min(y), time.perf_counter() - t_start - spent


def main():
    extra = extra_args()
    args = parse_args(__doc__)
    for name in args.function.split(","):
        f, bounds, _ = FUNCTIONS[name]
        bests, seconds = [], []
        for seed in range(args.seeds):
            b, s = run(f, bounds, args.evals, args.init, seed, extra.gp_restarts, extra.ei_starts)
            bests.append(b)
            seconds.append(s)
        emit(f"sklearn_gp_ei_r{extra.gp_restarts}_s{extra.ei_starts}", name, args, bests, seconds)


if __name__ == "__main__":
    main()
