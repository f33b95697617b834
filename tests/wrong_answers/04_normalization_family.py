"""Typical wrong answers for chapter 04's graded tasks, and shortcuts that
call PyTorch or the library (unavailable in the tests); each must fail the
test cell that follows its answer cell (see tests/test_assignments.py)."""

WRONG = {
    "ch04_axes": {
        "LN and IN swapped": '''
def norm_axes(method):
    if method == "batch":
        return (0, 2, 3)
    if method == "layer":
        return (2, 3)
    if method == "instance":
        return (1, 2, 3)
    raise ValueError(method)
''',
        "batch axis included": '''
def norm_axes(method):
    if method == "batch":
        return (0, 2, 3)
    if method == "layer":
        return (0, 1, 2, 3)
    if method == "instance":
        return (0, 2, 3)
    raise ValueError(method)
''',
        "LN over the channels only": '''
def norm_axes(method):
    if method == "batch":
        return (0, 2, 3)
    if method == "layer":
        return (1,)
    if method == "instance":
        return (2, 3)
    raise ValueError(method)
''',
        "IN over the rows only": '''
def norm_axes(method):
    if method == "batch":
        return (0, 2, 3)
    if method == "layer":
        return (1, 2, 3)
    if method == "instance":
        return (2,)
    raise ValueError(method)
''',
        "shortcut: the library's table": '''
def norm_axes(method):
    return norms.NORM_AXES[method]
''',
        "a list, not a tuple": '''
def norm_axes(method):
    return {"batch": (0, 2, 3), "layer": [1, 2, 3], "instance": [2, 3]}[method]
''',
    },
    "ch04_group_norm": {
        "shortcut: F.group_norm": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    return F.group_norm(X, num_groups, gamma, beta, eps)
''',
        "shortcut: F.instance_norm on (N, G, C/G*H*W)": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    N, C, H, W = X.shape
    Xg = X.reshape(N, num_groups, -1)
    Y = F.instance_norm(Xg, eps=eps).reshape(N, C, H, W)
    return Y * gamma.view(1, C, 1, 1) + beta.view(1, C, 1, 1)
''',
        "shortcut: the library's group_norm": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    return norms.group_norm(X, num_groups, gamma, beta, eps)
''',
        "per channel (instance norm), groups ignored": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    C = X.shape[1]
    Y = normalize(X, (2, 3), eps)
    return Y * gamma.view(1, C, 1, 1) + beta.view(1, C, 1, 1)
''',
        "interleaved groups: (N, C/G, G, H, W)": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    N, C, H, W = X.shape
    Xg = X.reshape(N, C // num_groups, num_groups, H, W)
    Y = normalize(Xg, (1, 3, 4), eps).reshape(N, C, H, W)
    return Y * gamma.view(1, C, 1, 1) + beta.view(1, C, 1, 1)
''',
        "unbiased variance": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    N, C, H, W = X.shape
    Xg = X.reshape(N, num_groups, -1)
    mean = Xg.mean(dim=2, keepdim=True)
    var = Xg.var(dim=2, keepdim=True, unbiased=True)
    Y = ((Xg - mean) / torch.sqrt(var + eps)).reshape(N, C, H, W)
    return Y * gamma.view(1, C, 1, 1) + beta.view(1, C, 1, 1)
''',
        "affine per group instead of per channel": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    N, C, H, W = X.shape
    G = num_groups
    Xg = normalize(X.reshape(N, G, C // G, H, W), (2, 3, 4), eps)
    Yg = Xg * gamma[:G].view(1, G, 1, 1, 1) + beta[:G].view(1, G, 1, 1, 1)
    return Yg.reshape(N, C, H, W)
''',
        "eps added to the standard deviation": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    N, C, H, W = X.shape
    Xg = X.reshape(N, num_groups, -1)
    mean = Xg.mean(dim=2, keepdim=True)
    std = Xg.var(dim=2, keepdim=True, unbiased=False).sqrt()
    Y = ((Xg - mean) / (std + eps)).reshape(N, C, H, W)
    return Y * gamma.view(1, C, 1, 1) + beta.view(1, C, 1, 1)
''',
        "statistics over the batch too": '''
def group_norm(X, num_groups, gamma, beta, eps=1e-5):
    N, C, H, W = X.shape
    Xg = X.reshape(N, num_groups, C // num_groups, H, W)
    Y = normalize(Xg, (0, 2, 3, 4), eps).reshape(N, C, H, W)
    return Y * gamma.view(1, C, 1, 1) + beta.view(1, C, 1, 1)
''',
    },
}
