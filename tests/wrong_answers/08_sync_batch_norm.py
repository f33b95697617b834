"""Typical wrong answers for chapter 08's graded tasks.

Each entry redefines an answer function wrongly (a "shortcut" calls the
library's sync-BN math, autograd or PyTorch's BN, which the tests make
unavailable); tests/test_assignments.py checks that the test cell after the
answer fails with it.
"""

_MERGE = '''
def merge_moments(counts, means, m2s):
    count = counts.sum(0)
    mean = {mean}
    m2 = {m2}
    return count, mean, m2
'''

_GOOD = dict(mean="(counts * means).sum(0) / count",
             m2="m2s.sum(0) + (counts * (means - mean) ** 2).sum(0)")


def _merge(**changes):
    return _MERGE.format(**{**_GOOD, **changes})


_GRAD = '''
def sync_input_grad(dY, X_hat, weight, invstd, count, sum_dy, sum_dy_xhat):
    c = lambda t: t.view(1, -1, 1, 1)
    n = {n}
    return c(weight * invstd / n) * ({body})
'''

_GOOD_GRAD = dict(n="count",
                  body="c(n) * dY - c(sum_dy) - X_hat * c(sum_dy_xhat)")


def _grad(**changes):
    return _GRAD.format(**{**_GOOD_GRAD, **changes})


WRONG = {
    "ch08_merge_moments": {
        "shortcut: the library's merge_stats": '''
def merge_moments(counts, means, m2s):
    return bnlesson.distributed.merge_stats(counts, means, m2s)
''',
        "forgets the spread of the ranks' means": _merge(m2="m2s.sum(0)"),
        "unweighted mean of the ranks' means": _merge(mean="means.mean(0)"),
        "spread of the means without the counts":
            _merge(m2="m2s.sum(0) + ((means - mean) ** 2).sum(0)"),
        "through the sum of squares (cancels in float32)": _merge(
            m2="(m2s + counts * means ** 2).sum(0) - count * mean ** 2"),
    },
    "ch08_sync_input_grad": {
        "shortcut: autograd of F.batch_norm": '''
def sync_input_grad(dY, X_hat, weight, invstd, count, sum_dy, sum_dy_xhat):
    X = X_hat.detach().clone().requires_grad_()
    Y = torch.nn.functional.batch_norm(X, None, None, weight, None, True)
    return torch.autograd.grad(Y, X, dY)[0]
''',
        "this rank's count instead of the global one":
            _grad(n="torch.full_like(count, dY.numel() // dY.shape[1])"),
        "forgets the x_hat term": _grad(body="c(n) * dY - c(sum_dy)"),
        "forgets the mean of dY": _grad(
            body="c(n) * dY - X_hat * c(sum_dy_xhat)"),
        "without gamma": '''
def sync_input_grad(dY, X_hat, weight, invstd, count, sum_dy, sum_dy_xhat):
    c = lambda t: t.view(1, -1, 1, 1)
    return c(invstd / count) * (c(count) * dY - c(sum_dy)
                                - X_hat * c(sum_dy_xhat))
''',
    },
}
