"""Typical wrong answers for chapter 02's graded tasks.

Each entry redefines an answer function wrongly (a "shortcut" calls PyTorch,
autograd or the library, which the tests make unavailable);
tests/test_assignments.py checks that the test cell after the answer fails
with it.
"""

_FORWARD = '''
def bn_forward(X, gamma, beta, eps=1e-5):
    dims = {dims}
    mean = X.mean(dim=dims, keepdim={keepdim})
    var = {var}
    Y = {Y}
    return Y, mean, var
'''

_GOOD = dict(dims="(0,) if X.dim() == 2 else (0, 2, 3)", keepdim="True",
             var="((X - mean) ** 2).mean(dim=dims, keepdim=True)",
             Y="gamma * (X - mean) / torch.sqrt(var + eps) + beta")


def _forward(**changes):
    return _FORWARD.format(**{**_GOOD, **changes})


_BACKWARD = '''
def bn_backward(dY, X, gamma, eps=1e-5):
    dims = {dims}
    mean = X.mean(dim=dims, keepdim=True)
    std = {std}
    X_hat = (X - mean) / std
    dbeta = {dbeta}
    dgamma = {dgamma}
    dX = {dX}
    return dX, dgamma, dbeta
'''

_GOOD_BACKWARD = dict(
    dims="(0,) if X.dim() == 2 else (0, 2, 3)",
    std="torch.sqrt(((X - mean) ** 2).mean(dim=dims, keepdim=True) + eps)",
    dbeta="dY.sum(dim=dims, keepdim=True)",
    dgamma="(dY * X_hat).sum(dim=dims, keepdim=True)",
    dX=("gamma / std * (dY - dY.mean(dim=dims, keepdim=True) "
        "- X_hat * (dY * X_hat).mean(dim=dims, keepdim=True))"))


def _backward(**changes):
    return _BACKWARD.format(**{**_GOOD_BACKWARD, **changes})


_MOVING = '''
def update_moving_stats(moving_mean, moving_var, mean, var, n, momentum=0.9):
    new_mean = {new_mean}
    new_var = {new_var}
    return new_mean, new_var
'''

_GOOD_MOVING = dict(
    new_mean="momentum * moving_mean + (1.0 - momentum) * mean",
    new_var="momentum * moving_var + (1.0 - momentum) * var * n / (n - 1)")


def _moving(**changes):
    return _MOVING.format(**{**_GOOD_MOVING, **changes})


WRONG = {
    "ch02_bn_forward": {
        "mean over dim 0 only (per position for 4-D input)":
            _forward(dims="0"),
        "per-sample statistics (layer norm's axes)":
            _forward(dims="tuple(range(1, X.dim()))"),
        "the lecture's 2-D shapes, no keepdim":
            _forward(keepdim="X.dim() == 4",
                     var="((X - mean) ** 2).mean(dim=dims, "
                         "keepdim=X.dim() == 4)"),
        "unbiased variance":
            _forward(var="X.var(dim=dims, keepdim=True)"),
        "normalised with the unbiased variance, biased one returned":
            _forward(Y="gamma * (X - mean) / torch.sqrt(X.var(dim=dims, "
                       "keepdim=True) + eps) + beta"),
        "eps outside the square root":
            _forward(Y="gamma * (X - mean) / (torch.sqrt(var) + eps) + beta"),
        "no eps":
            _forward(Y="gamma * (X - mean) / torch.sqrt(var) + beta"),
        "eps hard-coded to 1e-5":
            _forward(Y="gamma * (X - mean) / torch.sqrt(var + 1e-5) + beta"),
        "divided by the variance, not the standard deviation":
            _forward(Y="gamma * (X - mean) / (var + eps) + beta"),
        "gamma and beta not applied":
            _forward(Y="(X - mean) / torch.sqrt(var + eps)"),
        "shortcut: F.batch_norm":
            _forward(Y="F.batch_norm(X, None, None, gamma.reshape(-1), "
                       "beta.reshape(-1), training=True, eps=eps)"),
        "shortcut: imported under another name": '''
from torch.nn.functional import batch_norm as bn

def bn_forward(X, gamma, beta, eps=1e-5):
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    mean = X.mean(dim=dims, keepdim=True)
    var = X.var(dim=dims, correction=0, keepdim=True)
    Y = bn(X, None, None, gamma.reshape(-1), beta.reshape(-1),
           training=True, eps=eps)
    return Y, mean, var
''',
        "shortcut: F.layer_norm on the channels-first view": '''
def bn_forward(X, gamma, beta, eps=1e-5):
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    mean = X.mean(dim=dims, keepdim=True)
    var = X.var(dim=dims, correction=0, keepdim=True)
    Xt = X.transpose(0, 1)
    Y = F.layer_norm(Xt, Xt.shape[1:], eps=eps).transpose(0, 1)
    return gamma * Y + beta, mean, var
''',
        "shortcut: the library's batch_norm": _forward(
            Y="batch_norm(X, gamma, beta, mean, var, eps, 0.9, "
              "training=True)[0]"),
    },
    "ch02_moving_average": {
        "momentum on the new value (0.1 on the old one)":
            _moving(new_mean="(1.0 - momentum) * moving_mean "
                             "+ momentum * mean",
                    new_var="(1.0 - momentum) * moving_var + momentum * var "
                            "* n / (n - 1)"),
        "biased variance stored":
            _moving(new_var="momentum * moving_var + (1.0 - momentum) * var"),
        "Bessel factor inverted":
            _moving(new_var="momentum * moving_var + (1.0 - momentum) * var "
                            "* (n - 1) / n"),
        "Bessel factor on the whole average":
            _moving(new_var="(momentum * moving_var + (1.0 - momentum) * var) "
                            "* n / (n - 1)"),
        "Bessel factor on the mean too":
            _moving(new_mean="momentum * moving_mean "
                             "+ (1.0 - momentum) * mean * n / (n - 1)"),
        "shortcut: the library's ema": '''
def update_moving_stats(moving_mean, moving_var, mean, var, n, momentum=0.9):
    from bnlesson.running import ema
    new_mean = ema(torch.stack([mean]), 1 - momentum, init=moving_mean)[-1]
    new_var = ema(torch.stack([var * n / (n - 1)]), 1 - momentum,
                  init=moving_var)[-1]
    return new_mean, new_var
''',
        "in-place update of the inputs":
            _moving(new_mean="moving_mean.mul_(momentum)"
                             ".add_((1.0 - momentum) * mean)",
                    new_var="moving_var.mul_(momentum)"
                            ".add_((1.0 - momentum) * var * n / (n - 1))"),
    },
    "ch02_bn_backward": {
        "missing the x_hat * mean(dY * x_hat) term":
            _backward(dX="gamma / std "
                         "* (dY - dY.mean(dim=dims, keepdim=True))"),
        "wrong sign of the mean(dY) term":
            _backward(dX="gamma / std * (dY + dY.mean(dim=dims, "
                         "keepdim=True) - X_hat * (dY * X_hat).mean("
                         "dim=dims, keepdim=True))"),
        "wrong sign of the x_hat term":
            _backward(dX="gamma / std * (dY - dY.mean(dim=dims, "
                         "keepdim=True) + X_hat * (dY * X_hat).mean("
                         "dim=dims, keepdim=True))"),
        "gamma left out of dX":
            _backward(dX="1 / std * (dY - dY.mean(dim=dims, "
                         "keepdim=True) - X_hat * (dY * X_hat).mean("
                         "dim=dims, keepdim=True))"),
        "elementwise layer: dX = gamma * dY / std":
            _backward(dX="gamma * dY / std"),
        "sums instead of means in dX":
            _backward(dX="gamma / std * (dY - dY.sum(dim=dims, "
                         "keepdim=True) - X_hat * (dY * X_hat).sum("
                         "dim=dims, keepdim=True))"),
        "dgamma and dbeta swapped":
            _backward(dbeta="(dY * X_hat).sum(dim=dims, keepdim=True)",
                      dgamma="dY.sum(dim=dims, keepdim=True)"),
        "dgamma with (X - mean) instead of X_hat":
            _backward(
                dgamma="(dY * (X - mean)).sum(dim=dims, keepdim=True)"),
        "4-D input reduced over dim 0 only":
            _backward(dims="(0,)"),
        "eps left out of sigma":
            _backward(
                std="((X - mean) ** 2).mean(dim=dims, keepdim=True).sqrt()"),
        "shortcut: autograd through F.batch_norm": '''
def bn_backward(dY, X, gamma, eps=1e-5):
    X, gamma = X.clone().requires_grad_(), gamma.clone().requires_grad_()
    beta = torch.zeros_like(gamma, requires_grad=True)
    Y = F.batch_norm(X, None, None, gamma.reshape(-1), beta.reshape(-1),
                     training=True, eps=eps)
    return torch.autograd.grad(Y, (X, gamma, beta), dY)
''',
        "shortcut: autograd through the forward formula": '''
def bn_backward(dY, X, gamma, eps=1e-5):
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    X, gamma = X.clone().requires_grad_(), gamma.clone().requires_grad_()
    beta = torch.zeros_like(gamma, requires_grad=True)
    mean = X.mean(dim=dims, keepdim=True)
    var = X.var(dim=dims, correction=0, keepdim=True)
    Y = gamma * (X - mean) / torch.sqrt(var + eps) + beta
    Y.backward(dY)
    return X.grad, gamma.grad, beta.grad
''',
        "shortcut: the library's closed form": '''
def bn_backward(dY, X, gamma, eps=1e-5):
    X = X.clone().requires_grad_()
    g = gamma.reshape(-1).clone().requires_grad_()
    b = torch.zeros_like(g, requires_grad=True)
    Y = batch_norm_closed_form(X, g, b, eps)
    dX, dg, db = torch.autograd.grad(Y, (X, g, b), dY)
    return dX, dg.view(gamma.shape), db.view(gamma.shape)
''',
    },
}
