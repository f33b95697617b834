"""Typical wrong answers for chapter 05's graded tasks.

Each entry redefines an answer function wrongly (a "shortcut" calls the
library's estimators, which the tests make unavailable);
tests/test_assignments.py checks that the test cell after the answer fails
with it.
"""

_MEAN = '''
def incremental_mean(zs):
    estimates = []
    x = 0.0
    for k, z in enumerate(zs, start=1):
        x = {update}
        estimates.append(float(x))
    return estimates
'''

_KALMAN = '''
def kalman_filter(zs, x0, e_est, e_mea):
    x = float(x0)
    previous = float(x0)
    estimates, gains = [], []
    for z in zs:
        gain = {gain}
        x = {update}
        e_est = {error}
        previous = float(z)
        estimates.append(x)
        gains.append(gain)
    return estimates, gains
'''

_GOOD = dict(gain="e_est / (e_est + e_mea)", update="x + gain * (z - x)",
             error="(1 - gain) * e_est")


def _kalman(**changes):
    return _KALMAN.format(**{**_GOOD, **changes})


WRONG = {
    "ch05_incremental_mean": {
        "shortcut: the library's cumulative_mean": '''
def incremental_mean(zs):
    zs = torch.tensor([float(z) for z in zs], dtype=torch.float64)
    return cumulative_mean(zs).tolist() if len(zs) else []
''',
        "gain 1/(k+1): off by one":
            _MEAN.format(update="x + (z - x) / (k + 1)"),
        "averages with the previous measurement, not the estimate": '''
def incremental_mean(zs):
    estimates = []
    previous = None
    for k, z in enumerate(zs, start=1):
        previous = z if previous is None else previous
        x = previous + (z - previous) / k
        previous = z
        estimates.append(float(x))
    return estimates
''',
        "first measurement used as x_0, gain 1/(k-1) afterwards": '''
def incremental_mean(zs):
    zs = list(zs)
    if not zs:
        return []
    x = float(zs[0])
    estimates = [x]
    for k, z in enumerate(zs[1:], start=1):
        x = x + (z - x) / k
        estimates.append(float(x))
    return estimates
''',
        "constant gain 1/2 (an EMA, not the mean)": _MEAN.format(
            update="z if k == 1 else x + (z - x) / 2"),
        "not recursive: slices the measurements (fails on a generator)": '''
def incremental_mean(zs):
    return [float(sum(zs[:k]) / k) for k in range(1, len(zs) + 1)]
''',
    },
    "ch05_kalman_update": {
        "shortcut: the library's kalman_1d": '''
def kalman_filter(zs, x0, e_est, e_mea):
    zs = torch.tensor(list(zs), dtype=torch.float64)
    if len(zs) == 0:
        return [], []
    est, gains = kalman_1d(zs, e_est=e_est, e_mea=e_mea, x0=x0)
    return est.tolist(), gains.tolist()
''',
        "gain swapped: e_mea / (e_est + e_mea)": _kalman(
            gain="e_mea / (e_est + e_mea)"),
        "estimate error never updated": _kalman(error="e_est"),
        "error updated with K instead of 1 - K": _kalman(error="gain * e_est"),
        "update uses the previous measurement": _kalman(
            update="x + gain * (previous - x)"),
        "error updated before the gain is used": '''
def kalman_filter(zs, x0, e_est, e_mea):
    x = float(x0)
    estimates, gains = [], []
    for z in zs:
        gain = e_est / (e_est + e_mea)
        e_est = (1 - gain) * e_est
        gain = e_est / (e_est + e_mea)
        x = x + gain * (z - x)
        estimates.append(x)
        gains.append(gain)
    return estimates, gains
''',
    },
}
