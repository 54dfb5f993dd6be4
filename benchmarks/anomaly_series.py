#!/usr/bin/env python3
"""Planted, labelled series for `promptlearn_bench anomaly` (reference data generator; numpy only).

Usage: python3 benchmarks/anomaly_series.py OUT_DIR [SEED]  (54 series of 4032 points, 5-minute spacing,
columns timestamp,value,label; NAB-style anomaly windows labelled 1). The figures in docs/patterns.md were
measured on OUT_DIR from seed 1: for f in OUT_DIR/*.csv; do promptlearn_bench anomaly --csv $f --value value
--label label; done, summing windows_caught per detector."""
import numpy as np, os, sys
out = sys.argv[1] if len(sys.argv) > 1 else 'series'
seed0 = int(sys.argv[2]) if len(sys.argv) > 2 else 1
os.makedirs(out, exist_ok=True)
P = 288
def base(kind, n, r):
    t = np.arange(n)
    if kind == 'seasonal':
        amp = r.uniform(2, 6); s = r.uniform(0.3, 1.0)
        shape = np.sin(2*np.pi*t/P) + 0.3*np.sin(4*np.pi*t/P + r.uniform(0, 6))
        return 20 + amp*shape + r.normal(0, s, n), s
    if kind == 'square_daily':  # art_daily-like: on/off daily pattern
        s = r.uniform(0.5, 2)
        day = ((t % P) > P*0.3) & ((t % P) < P*0.7)
        return 20 + 40*day + r.normal(0, s, n), s
    if kind == 'noise':
        s = r.uniform(0.5, 3)
        return 50 + np.cumsum(r.normal(0, 0.02, n)) + r.normal(0, s, n), s
    if kind == 'ar':
        x = np.zeros(n); e = r.normal(0, 1, n)
        for i in range(1, n): x[i] = 0.97*x[i-1] + e[i]
        return 80 + x, 1.0
    if kind == 'spiky':  # cpu-like: skewed noise + normal spikes
        s = r.uniform(0.5, 2)
        x = 30 + r.lognormal(0, 0.5, n)*s
        k = r.random(n) < 0.006
        x[k] += r.uniform(4, 10, k.sum())*s
        return x, s
    if kind == 'counts':  # tweets-like: poisson with daily seasonality and natural bursts
        lam = 15*(1.3 + np.sin(2*np.pi*t/P))
        x = r.poisson(lam).astype(float)
        for b in r.choice(n, 3):
            x[b:b+3] += r.poisson(20, len(x[b:b+3]))
        return x, np.sqrt(15)
    if kind == 'quantized':
        x = np.round(2 + r.normal(0, 0.6, n))
        return np.maximum(x, 0), 0.6
    raise ValueError(kind)

def plant(kind, x, i, s, r, n):
    m = r.uniform(0.7, 1.3)
    if kind == 'spike':
        w = r.integers(1, 4); x[i:i+w] += m*6*s*r.choice([-1, 1])
    elif kind == 'shift':
        x[i:] += m*3*s*r.choice([-1, 1])
    elif kind == 'temp_shift':
        x[i:i+100] += m*2.5*s*r.choice([-1, 1])
    elif kind == 'variance':
        x[i:i+60] += r.normal(0, m*3*s, 60)
    elif kind == 'flatline':
        x[i:i+120] = x[i]
    elif kind == 'flat_middle':  # one day's pattern replaced by the day mean
        seg = x[i:i+P]; x[i:i+P] = seg.mean() + r.normal(0, s, len(seg))
    elif kind == 'amplitude':
        seg = x[i:i+P]; mu = seg.mean(); x[i:i+P] = mu + (seg-mu)*0.4
    elif kind == 'drift':
        L = 150; x[i:i+L] += np.linspace(0, m*5*s, L); x[i+L:] += m*5*s
    elif kind == 'burst_big':
        x[i:i+6] += m*4*s*np.array([1, 2, 3, 2, 1.5, 1])
    return x

combos = [('seasonal','spike'),('seasonal','shift'),('seasonal','flat_middle'),('seasonal','amplitude'),('seasonal','variance'),
          ('square_daily','flat_middle'),('square_daily','spike'),('square_daily','temp_shift'),
          ('noise','shift'),('noise','temp_shift'),('noise','variance'),('noise','drift'),('noise','spike'),
          ('ar','shift'),('ar','spike'),('ar','flatline'),('ar','variance'),
          ('spiky','shift'),('spiky','temp_shift'),('spiky','variance'),('spiky','flatline'),
          ('counts','burst_big'),('counts','shift'),('counts','flat_middle'),
          ('quantized','shift'),('quantized','spike'),('quantized','variance')]
n = 4032
idx = 0
for rep in range(2):
    for bk, ak in combos:
        r = np.random.default_rng(seed0*1000 + idx)
        x, s = base(bk, n, r)
        na = int(r.integers(1, 3)) if ak in ('spike', 'variance', 'burst_big', 'temp_shift') else 1
        wl = int(0.1*n/na)
        starts = sorted(r.choice(np.arange(int(0.2*n), int(0.9*n)), na, replace=False)) if na > 1 else [int(r.integers(int(0.25*n), int(0.85*n)))]
        if na == 2 and starts[1] - starts[0] < wl + 300: starts[1] = min(n - wl, starts[0] + wl + 300)
        lab = np.zeros(n, int)
        for st in starts:
            x = plant(ak, x, st, s, r, n)
            lab[max(0, st - wl//2):min(n, st + wl//2)] = 1
        with open(f'{out}/{idx:02d}_{bk}_{ak}.csv', 'w') as f:
            f.write('timestamp,value,label\n')
            for i in range(n):
                f.write(f'2014-02-{1 + i//P:02d} {(i%P)*5//60:02d}:{(i%P)*5%60:02d}:00,{x[i]:.5f},{lab[i]}\n')
        idx += 1
