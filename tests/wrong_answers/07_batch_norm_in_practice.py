"""Typical wrong answers for chapter 07's graded tasks.

Each entry redefines an answer function wrongly (a "shortcut" calls
PyTorch's or the library's implementation, which the tests make
unavailable); tests/test_assignments.py checks that the test cell after the
answer fails with it.
"""

_FOLD = '''
def fold_bn_by_hand(weight, bias, running_mean, running_var, eps, gamma, beta):
    if bias is None:
        bias = torch.zeros_like(running_mean)
    scale = {scale}
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return weight * {weight_scale}, {bias_out}
'''

_FOLD_GOOD = dict(scale="gamma / torch.sqrt(running_var + eps)",
                  weight_scale="scale.reshape(shape)",
                  bias_out="scale * (bias - running_mean) + beta")


def _fold(**changes):
    return _FOLD.format(**{**_FOLD_GOOD, **changes})


_RENORM = '''
def batch_renorm_forward(X, running_mean, running_var, gamma, beta,
                         r_max, d_max, eps=1e-5):
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    shape = (1, -1) + (1,) * (X.dim() - 2)
    mean = X.mean(dim=dims, keepdim=True)
    std = torch.sqrt(X.var(dim=dims, unbiased={unbiased}, keepdim=True) + eps)
    sigma = torch.sqrt(running_var + eps).reshape(shape)
    r = ({r}).clamp(1 / r_max, r_max){detach}
    d = ({d}).clamp(-d_max, d_max){detach}
    Y = gamma.reshape(shape) * ((X - mean) / std * r + d) + beta.reshape(shape)
    return Y, r.reshape(-1), d.reshape(-1)
'''

_RENORM_GOOD = dict(unbiased="False", r="std / sigma",
                    d="(mean - running_mean.reshape(shape)) / sigma",
                    detach=".detach()")


def _renorm(**changes):
    return _RENORM.format(**{**_RENORM_GOOD, **changes})


WRONG = {
    "ch07_fold": {
        "shortcut: PyTorch's fuse_linear_bn_weights": '''
def fold_bn_by_hand(weight, bias, running_mean, running_var, eps, gamma, beta):
    from torch.nn.utils.fusion import fuse_linear_bn_weights
    return fuse_linear_bn_weights(weight, bias, running_mean, running_var,
                                  eps, gamma, beta)
''',
        "shortcut: the library's fold_bn_weights": '''
def fold_bn_by_hand(weight, bias, running_mean, running_var, eps, gamma, beta):
    from bnlesson.practice import fold_bn_weights
    return fold_bn_weights(weight, bias, running_mean, running_var, eps,
                           gamma, beta)
''',
        "multiplies by sigma instead of dividing":
            _fold(scale="gamma * torch.sqrt(running_var + eps)"),
        "forgets eps": _fold(scale="gamma / torch.sqrt(running_var)"),
        "divides by the variance, not the std":
            _fold(scale="gamma / (running_var + eps)"),
        "drops the layer's old bias":
            _fold(bias_out="beta - scale * running_mean"),
        "does not subtract the mean":
            _fold(bias_out="scale * bias + beta"),
        "scales the columns (input channels)":
            _fold(weight_scale="scale.reshape((1, -1) + (1,) * "
                               "(weight.dim() - 2))"),
    },
    "ch07_renorm": {
        "shortcut: F.batch_norm, then r and d": '''
def batch_renorm_forward(X, running_mean, running_var, gamma, beta,
                         r_max, d_max, eps=1e-5):
    import torch.nn.functional as F
    C = X.shape[1]
    Y = F.batch_norm(X, None, None, gamma, beta, training=True, eps=eps)
    return Y, torch.ones(C), torch.zeros(C)
''',
        "shortcut: the library's batch_renorm": '''
def batch_renorm_forward(X, running_mean, running_var, gamma, beta,
                         r_max, d_max, eps=1e-5):
    from bnlesson.norms import batch_renorm
    Y = batch_renorm(X, running_mean.clone(), running_var.clone(), gamma,
                     beta, True, 0.0, eps, r_max, d_max)
    C = X.shape[1]
    return Y, torch.ones(C), torch.zeros(C)
''',
        "unbiased batch variance": _renorm(unbiased="True"),
        "r upside down (sigma / sigma_B)": _renorm(r="sigma / std"),
        "d not divided by sigma":
            _renorm(d="mean - running_mean.reshape(shape)"),
        "r and d not detached": _renorm(detach=""),
    },
}
