"""Why does BN work? The measurements of chapter 06 (Santurkar et al. 2018).

* :class:`NoiseInjection` and :func:`add_noise`: "noisy BN", a random,
  per-feature scale and shift after each BN layer, drawn anew at every
  training step (more distributional shift than a net without BN).
* :func:`distribution_shift`: how far a layer's percentiles move between
  recordings (the distributional view of internal covariate shift).
* :func:`gradient_shift`: how much a layer's gradient changes when the
  layers before it take their SGD step (the gradient view of ICS).
* :func:`landscape_probe`: loss and gradient along the gradient direction
  (loss range, gradient predictiveness, effective beta-smoothness).
* :func:`scale_weights`: a layer's weights multiplied by a constant.
* :func:`batch_spread`: how much one example's output of a layer varies
  with the other examples of its batch (the noise of BN's statistics).
* :func:`variance_shift`: each BN layer's running variance over the
  variance of its input at inference (dropout before BN, Li et al. 2019).

Every measurement runs on a training-mode copy of the net (BN uses the
batch statistics, the loss the optimiser sees); the net is left untouched.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from bnlesson.diagnostics import (
    QUANTILES,
    _training_copy,
    layer_outputs,
    select_layers,
)
from bnlesson.norms import BatchNorm
from bnlesson.practice import param_groups
from bnlesson.running import population_stats
from bnlesson.utils import model_device

#: The reference implementations, unavailable inside the graded tests
#: (see :func:`bnlesson.checks.forbidden`).
LANDSCAPE_FUNCTIONS = ("bnlesson.landscape.gradient_shift",
                       "bnlesson.landscape.landscape_probe")


class NoiseInjection(nn.Module):
    """Y = scale * X + shift for X (N, C), with scale ~ U(1 - s, 1 + s) and
    shift ~ U(-m, m) per feature, drawn anew at every training forward pass
    (``scale_noise`` s, ``shift_noise`` m). The identity in ``eval()``."""

    def __init__(self, num_features: int, shift_noise: float = 1.0,
                 scale_noise: float = 0.5):
        super().__init__()
        if not 0 <= scale_noise < 1 or shift_noise < 0:
            raise ValueError(f"need 0 <= scale_noise < 1 and shift_noise >= 0"
                             f" (got {scale_noise} and {shift_noise})")
        self.num_features = num_features
        self.shift_noise = shift_noise
        self.scale_noise = scale_noise

    def forward(self, X):
        """X: (N, C) -> (N, C)."""
        if X.dim() != 2:
            raise ValueError(f"expected 2D input (got {X.dim()}D input)")
        if not self.training:
            return X
        C = self.num_features
        scale = 1 + self.scale_noise * (2 * torch.rand(C, device=X.device) - 1)
        shift = self.shift_noise * (2 * torch.rand(C, device=X.device) - 1)
        return scale * X + shift  # (N, C)

    def extra_repr(self):
        return (f"{self.num_features}, shift_noise={self.shift_noise}, "
                f"scale_noise={self.scale_noise}")


def add_noise(net: nn.Module, shift_noise: float = 1.0,
              scale_noise: float = 0.5) -> nn.Module:
    """Put a :class:`NoiseInjection` after every ``nn.BatchNorm1d`` of
    ``net`` (in place: each BN becomes Sequential(BN, noise)). Returns net."""
    targets = [(name, m) for name, m in net.named_modules()
               if isinstance(m, nn.BatchNorm1d)]
    if not targets:
        raise ValueError("the net has no nn.BatchNorm1d layer")
    for name, bn in targets:
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        noise = NoiseInjection(bn.num_features, shift_noise, scale_noise)
        setattr(parent, child, nn.Sequential(bn, noise))
    return net


def feature_percentiles(net: nn.Module, X: torch.Tensor,
                        layer: str) -> torch.Tensor:
    """The 15th, 50th and 85th percentiles over the batch X (B, ...) of each
    feature of the output of module ``layer`` (training mode, batch
    statistics, on a copy of the net): a (3, C) tensor."""
    Y = layer_outputs(net, X, [layer])[layer]  # (B, C)
    return torch.quantile(Y.float(), torch.tensor(QUANTILES), dim=0).cpu()


def distribution_shift(percentiles) -> float:
    """Mean |change| of each feature's percentiles between consecutive
    recordings: ``percentiles`` (T, 3, C), one :func:`feature_percentiles`
    per recording."""
    q = torch.as_tensor(percentiles, dtype=torch.float64)
    if q.dim() != 3 or len(q) < 2:
        raise ValueError(f"expected (T, 3, C) with T >= 2 (got shape "
                         f"{tuple(q.shape)})")
    return q.diff(dim=0).abs().mean().item()


def train_probed(net: nn.Module, train_iter, lr: float, num_epochs: int,
                 every: int, probe, weight_decay: float = 0.0) -> dict:
    """Plain SGD with cross-entropy, step by step, calling ``probe(net)``
    before step 0 and after every ``every`` steps (and after the last).
    ``weight_decay`` applies to the weights only, not to biases nor to the
    norm layers' gamma and beta (:func:`bnlesson.practice.param_groups`).
    Returns ``{"step_loss": [one per step], "probe_steps": [...],
    "probes": [probe's results]}``."""
    optimizer = torch.optim.SGD(param_groups(net, weight_decay), lr=lr)
    device = model_device(net)
    out = {"step_loss": [], "probe_steps": [], "probes": []}
    step = 0
    for _ in range(num_epochs):
        for X, y in train_iter:
            if step % every == 0:
                out["probe_steps"].append(step)
                out["probes"].append(probe(net))
            net.train()
            loss = F.cross_entropy(net(X.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            out["step_loss"].append(loss.item())
            step += 1
    out["probe_steps"].append(step)
    out["probes"].append(probe(net))
    return out


def gradient_shift(net: nn.Module, X: torch.Tensor, y: torch.Tensor,
                   lr: float, layer: str) -> dict[str, float]:
    """Santurkar et al.'s internal covariate shift of the weight of module
    ``layer``: its gradient G before and G' after every parameter below it
    (those before it in ``net.parameters()``) took one SGD step (``lr``) on
    the batch X (B, ...), y (B,); the layer itself and those above keep
    their weights. Returns ``{"l2": ||G - G'||, "cos": cos(G, G'),
    "norm": ||G||}``."""
    model = _training_copy(net)
    device = model_device(model)
    X, y = X.to(device), y.to(device)
    weight = getattr(select_layers(model, [layer])[layer], "weight", None)
    if not isinstance(weight, nn.Parameter):
        raise ValueError(f"module {layer!r} has no weight parameter")
    params = list(model.parameters())
    below = params[:next(i for i, p in enumerate(params) if p is weight)]
    if not below:
        raise ValueError(f"{layer!r} is the first layer: nothing below it")
    *g_below, G = torch.autograd.grad(F.cross_entropy(model(X), y),
                                      below + [weight])
    with torch.no_grad():
        for p, g in zip(below, g_below, strict=True):
            p -= lr * g
    G_after, = torch.autograd.grad(F.cross_entropy(model(X), y), [weight])
    return {"l2": (G - G_after).norm().item(),
            "cos": F.cosine_similarity(G.flatten(), G_after.flatten(),
                                       dim=0).item(),
            "norm": G.norm().item()}


def landscape_probe(net: nn.Module, X: torch.Tensor, y: torch.Tensor,
                    steps) -> dict:
    """Loss and gradient along the gradient direction (Santurkar et al.,
    Fig. 4). With g the gradient of all parameters at the net's weights W on
    the batch X (B, ...), y (B,), for each step size eta in ``steps``: the
    loss L(W - eta g) and the gradient change ||grad L(W - eta g) - g||.
    Returns ``{"losses": [...], "loss_range": max - min over the steps and
    eta = 0, "grad_change": max change, "beta": max change / ||eta g||}``.
    """
    steps = [float(s) for s in steps]
    if not steps or min(steps) <= 0:
        raise ValueError(f"steps must be positive step sizes (got {steps})")
    model = _training_copy(net)
    device = model_device(model)
    X, y = X.to(device), y.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in params]
    loss0, g = _loss_and_grad(model, X, y, params)
    g_norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    losses, changes, betas = [loss0], [], []
    for eta in steps:
        with torch.no_grad():
            for p, p0, gi in zip(params, start, g, strict=True):
                p.copy_(p0 - eta * gi)
        loss, g_eta = _loss_and_grad(model, X, y, params)
        pairs = zip(g_eta, g, strict=True)
        change = torch.sqrt(sum(((a - b) ** 2).sum() for a, b in pairs)).item()
        losses.append(loss)
        changes.append(change)
        betas.append(change / (eta * g_norm.item()))
    return {"losses": losses[1:], "loss_range": max(losses) - min(losses),
            "grad_change": max(changes), "beta": max(betas)}


def _loss_and_grad(model, X, y, params):
    loss = F.cross_entropy(model(X), y)
    return loss.item(), torch.autograd.grad(loss, params)


def scale_weights(net: nn.Module, layer: str, factor: float) -> nn.Module:
    """A copy of ``net`` with the weight of the module ``layer`` multiplied
    by ``factor`` (its bias too, so that a following BN sees a scaled
    input)."""
    model = _training_copy(net)
    module = select_layers(model, [layer])[layer]
    with torch.no_grad():
        module.weight *= factor
        if getattr(module, "bias", None) is not None:
            module.bias *= factor
    model.train(net.training)
    return model


def batch_spread(net: nn.Module, X: torch.Tensor, pool: torch.Tensor,
                 layers, batch_size: int, num_batches: int,
                 generator: torch.Generator | None = None) -> dict:
    """The std, over ``num_batches`` random batches, of the outputs of the
    modules ``layers`` for each example of X (K, ...): each batch holds the
    example and ``batch_size - 1`` others drawn (with replacement) from
    ``pool`` (P, ...); training mode (batch statistics), on a copy.
    Returns name -> (K, C)."""
    if batch_size < 2 or num_batches < 2:
        raise ValueError(f"need batch_size >= 2 and num_batches >= 2 (got "
                         f"{batch_size} and {num_batches})")
    model = _training_copy(net)
    device = model_device(model)
    outputs = {name: [] for name in layers}
    handles = [module.register_forward_hook(
        lambda mod, args, out, name=name: outputs[name].append(out[0]))
        for name, module in select_layers(model, layers).items()]
    try:
        with torch.no_grad():
            for x in X:
                for _ in range(num_batches):
                    idx = torch.randint(len(pool), (batch_size - 1,),
                                        generator=generator)
                    model(torch.cat([x[None], pool[idx]]).to(device))
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.stack(Y).view(len(X), num_batches, -1).std(dim=1).cpu()
            for name, Y in outputs.items()}  # (K, C): std over the batches


def variance_shift(net: nn.Module, data_iter,
                   num_batches: int | None = None) -> dict[str, torch.Tensor]:
    """Per BN layer, per channel: its running variance over the variance of
    its input at inference (eval mode, over ``data_iter``, the first
    ``num_batches`` only if given). 1 means no shift; dropout before the
    layer makes it larger than 1 (Li et al. 2019). Returns name -> (C,)."""
    stats = population_stats(net, data_iter, num_batches)
    modules = dict(net.named_modules())
    shift = {}
    for name, population in stats.items():
        layer = modules[name]  # nn.BatchNorm* or bnlesson.norms.BatchNorm
        if isinstance(layer, BatchNorm):
            var = layer.moving_var
            exact = (population.unbiased_var if layer.unbiased
                     else population.var)
        else:  # PyTorch stores the unbiased variance
            var, exact = layer.running_var, population.unbiased_var
        var = var.detach().double().reshape(-1).cpu()
        shift[name] = var / exact.cpu()  # (C,)
    return shift
