"""Typical wrong answers for chapter 02's graded tasks.

Each entry redefines an answer function wrongly; tests/test_assignments.py
checks that the test cell after the answer fails with it.
"""

from functools import partial

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


_forward = partial(_FORWARD.format, **_GOOD)


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


_backward = partial(_BACKWARD.format, **_GOOD_BACKWARD)


_MOVING = '''
def update_moving_stats(moving_mean, moving_var, mean, var, n, momentum=0.9):
    new_mean = {new_mean}
    new_var = {new_var}
    return new_mean, new_var
'''

_GOOD_MOVING = dict(
    new_mean="momentum * moving_mean + (1.0 - momentum) * mean",
    new_var="momentum * moving_var + (1.0 - momentum) * var * n / (n - 1)")


_moving = partial(_MOVING.format, **_GOOD_MOVING)


WRONG = {
    "ch02_bn_forward": {
        "mean over dim 0 only (per position for 4-D input)":
            _forward(dims="0"),
        "per-sample statistics (layer norm's axes)":
            _forward(dims="tuple(range(1, X.dim()))"),
        "the lecture's 2-D shapes, no keepdim": _forward(
            keepdim="X.dim() == 4",
            var="((X - mean) ** 2).mean(dim=dims, keepdim=X.dim() == 4)"),
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
    },
    "ch02_moving_average": {
        "momentum on the new value (0.1 on the old one)": _moving(
            new_mean="(1.0 - momentum) * moving_mean + momentum * mean",
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
        "Bessel factor on the mean too": _moving(
            new_mean="momentum * moving_mean + (1.0 - momentum) * mean "
                     "* n / (n - 1)"),
        "in-place update of the inputs": _moving(
            new_mean="moving_mean.mul_(momentum).add_((1.0 - momentum) "
                     "* mean)",
            new_var="moving_var.mul_(momentum).add_((1.0 - momentum) "
                    "* var * n / (n - 1))"),
    },
    "ch02_bn_backward": {
        "missing the x_hat * mean(dY * x_hat) term": _backward(
            dX="gamma / std * (dY - dY.mean(dim=dims, keepdim=True))"),
        "wrong sign of the mean(dY) term": _backward(
            dX="gamma / std * (dY + dY.mean(dim=dims, keepdim=True) "
               "- X_hat * (dY * X_hat).mean(dim=dims, keepdim=True))"),
        "wrong sign of the x_hat term": _backward(
            dX="gamma / std * (dY - dY.mean(dim=dims, keepdim=True) "
               "+ X_hat * (dY * X_hat).mean(dim=dims, keepdim=True))"),
        "gamma left out of dX": _backward(
            dX="1 / std * (dY - dY.mean(dim=dims, keepdim=True) "
               "- X_hat * (dY * X_hat).mean(dim=dims, keepdim=True))"),
        "elementwise layer: dX = gamma * dY / std":
            _backward(dX="gamma * dY / std"),
        "sums instead of means in dX": _backward(
            dX="gamma / std * (dY - dY.sum(dim=dims, keepdim=True) "
               "- X_hat * (dY * X_hat).sum(dim=dims, keepdim=True))"),
        "dgamma and dbeta swapped":
            _backward(dbeta="(dY * X_hat).sum(dim=dims, keepdim=True)",
                      dgamma="dY.sum(dim=dims, keepdim=True)"),
        "dgamma with (X - mean) instead of X_hat":
            _backward(dgamma="(dY * (X - mean)).sum(dim=dims, keepdim=True)"),
        "4-D input reduced over dim 0 only":
            _backward(dims="(0,)"),
        "eps left out of sigma": _backward(
            std="((X - mean) ** 2).mean(dim=dims, keepdim=True).sqrt()"),
    },
}
