"""The trainer, in the spirit of ``d2l.train_ch6``, and the :class:`History`.

:func:`train` runs SGD with cross-entropy and returns a :class:`History`
instead of drawing an animation. It differs from d2l where it matters:

* metrics stay on the device until the end of each epoch (one host sync
  per epoch); evaluation runs under ``torch.no_grad()``;
* ``seed`` runs on a private copy of PyTorch's RNG (``fork_rng``): it fixes
  the initial weights and the shuffling (of the global generator, or of
  ``train_iter.generator``), and the global RNG is left as it was, so a
  cached run and a fresh one leave a notebook in the same state;
* ``cache={...}`` stores the run and its weights
  (:func:`bnlesson.cache.run_cached_training`);
* nothing is printed; a tqdm bar shows progress unless ``progress=False``
  or ``BNLESSON_PROGRESS=0``.
"""
from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from bnlesson.cache import run_cached_training
from bnlesson.models import init_xavier
from bnlesson.utils import env_flag, get_device, model_device


@dataclass
class History:
    """Metrics of one run, one entry per epoch (``step_*``: per mini-batch).

    ``train_loss`` / ``train_acc`` average over the epoch's mini-batches,
    each taken in training mode before that batch's update (as d2l does);
    ``test_acc`` is measured in ``eval()`` mode after the epoch; ``seconds``
    is the wall time of each epoch's training pass. ``step_loss`` /
    ``step_acc`` are None unless ``train(..., record_steps=True)``.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    num_examples: int = 0
    step_loss: list[float] | None = None
    step_acc: list[float] | None = None

    @property
    def num_epochs(self) -> int:
        return len(self.test_acc)

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's ``train_loss``, ``train_acc`` and ``test_acc``."""
        if not self.test_acc:
            raise ValueError("the history is empty: no epoch was run")
        return {"train_loss": self.train_loss[-1],
                "train_acc": self.train_acc[-1],
                "test_acc": self.test_acc[-1]}

    def summary(self) -> str:
        """d2l's closing line without timings: ``'loss 0.271, train acc
        0.900, test acc 0.861'``."""
        return ("loss {train_loss:.3f}, train acc {train_acc:.3f}, "
                "test acc {test_acc:.3f}".format(**self.final))

    def epochs_to_reach(self, acc: float) -> int | None:
        """The first epoch (1-based) with test accuracy >= ``acc``, or None."""
        return next((epoch for epoch, test_acc in enumerate(self.test_acc, 1)
                     if test_acc >= acc), None)

    def to_dict(self) -> dict:
        """Plain lists and numbers (JSON- and cache-friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        return cls(**values)


def evaluate_accuracy(net: nn.Module, data_iter, device=None) -> float:
    """Accuracy of ``net`` over ``data_iter`` (batches X (B, ...), y (B,))
    in ``eval()`` mode, on ``device`` (default: the net's); the net's mode
    is restored afterwards."""
    device = model_device(net) if device is None else torch.device(device)
    was_training = net.training
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    num_examples = 0
    # no_grad, not inference_mode: the lecture's BN keeps tensors it makes
    # here (its statistics moved to the input's device) for autograd later.
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += (net(X).argmax(dim=1) == y).sum()
            num_examples += len(y)
    net.train(was_training)
    if num_examples == 0:
        raise ValueError("data_iter yielded no examples")
    return correct.item() / num_examples


def train(net: nn.Module, train_iter, test_iter, num_epochs: int, lr: float,
          device=None, *, init: str | None = "xavier", seed: int | None = None,
          record_steps: bool = False, progress: bool | None = None,
          cache: dict | None = None) -> History:
    """Train ``net`` with SGD and cross-entropy; return its :class:`History`.

    ``train_iter`` / ``test_iter`` yield ``(X, y)``: X (B, 1, 28, 28) (or
    whatever ``net`` takes), y (B,) int64 labels. The net is moved to
    ``device`` (default :func:`bnlesson.utils.get_device`) and left there,
    trained, in training mode.

    init: ``"xavier"`` re-initialises the net as ``d2l.train_ch6`` does;
        ``None`` keeps its current parameters.
    seed: fixes the initial weights and the shuffling; None uses the
        global RNG as it stands (like d2l).
    record_steps: also record each mini-batch's loss and accuracy.
    progress: a tqdm bar; None: on unless ``BNLESSON_PROGRESS=0``.
    cache: a dict of what the arguments cannot show (e.g. ``{"chapter": 2,
        "subset": "mini"}``) turns caching on; it needs a ``seed``. The key
        adds the arguments, ``repr(net)``, a hash of the initial weights,
        the batch size and counts, and the device type. A hit loads the
        trained weights into ``net`` and returns the stored History (its
        ``seconds`` are those of the original run).
    """
    if num_epochs < 1 or lr <= 0:
        raise ValueError(f"num_epochs and lr must be positive "
                         f"(got {num_epochs} and {lr})")
    if init not in ("xavier", None):
        raise ValueError(f"init must be 'xavier' or None (got {init!r})")
    if cache is not None and (not isinstance(cache, dict) or seed is None):
        raise ValueError("cache needs a dict and a seed (an unseeded run "
                         "cannot stand in for another)")
    device = get_device() if device is None else torch.device(device)
    with _seeded(seed, device, train_iter):
        if init == "xavier":
            _reinitialise(net)
        net.to(device)
        fit = partial(_fit, net, train_iter, test_iter, num_epochs, lr,
                      device, record_steps, progress)
        if cache is None:
            return fit()
        config = {"user": cache, "lr": lr, "num_epochs": num_epochs,
                  "init": init, "seed": seed, "record_steps": record_steps,
                  "net": repr(net), "device": device.type,
                  "batch_size": getattr(train_iter, "batch_size", None),
                  "train_batches": _length(train_iter),
                  "test_batches": _length(test_iter)}
        return History.from_dict(run_cached_training(
            config, net, lambda: fit().to_dict()))


def _reinitialise(net: nn.Module) -> None:
    """Fresh parameters drawn from the current RNG: each layer's default
    initialisation, then Xavier for Linear/Conv2d weights."""
    for module in net.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    init_xavier(net)


@contextmanager
def _seeded(seed: int | None, device: torch.device, data_iter):
    """Run the block on a private RNG seeded with ``seed`` (no-op for None);
    restore the global RNG and ``data_iter.generator`` afterwards."""
    if seed is None:
        yield
        return
    generator = getattr(data_iter, "generator", None)
    if not isinstance(generator, torch.Generator):
        generator = torch.Generator()  # a stand-in that nothing draws from
    saved = generator.get_state()
    cuda = (list(range(torch.cuda.device_count()))
            if device.type == "cuda" else [])
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        generator.manual_seed(seed)
        try:
            yield
        finally:
            generator.set_state(saved)


def _fit(net, train_iter, test_iter, num_epochs, lr, device, record_steps,
         progress) -> History:
    from tqdm.auto import tqdm  # a widget in Jupyter, a text bar elsewhere

    if progress is None:
        progress = env_flag("BNLESSON_PROGRESS", True)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    history = History(step_loss=[] if record_steps else None,
                      step_acc=[] if record_steps else None)
    num_batches = _length(train_iter)
    total = num_batches * num_epochs if num_batches is not None else None
    # leave=False: finished bars do not pile up in the stored outputs.
    with tqdm(total=total, unit="batch", leave=False,
              disable=not progress) as bar:
        for _ in range(num_epochs):
            start = time.perf_counter()
            _train_epoch(net, train_iter, optimizer, device, history, bar)
            history.seconds.append(time.perf_counter() - start)
            history.test_acc.append(evaluate_accuracy(net, test_iter, device))
            bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}",
                            test_acc=f"{history.test_acc[-1]:.3f}")
    return history


def _train_epoch(net, train_iter, optimizer, device, history, bar) -> None:
    """One pass over ``train_iter``; appends its loss and accuracy (and the
    steps') to ``history``, read with a single sync at the end."""
    net.train()
    loss_sum = torch.zeros((), device=device)  # sum of loss * batch size
    correct = torch.zeros((), dtype=torch.int64, device=device)
    step_loss, step_acc = [], []
    num_examples = 0
    for X, y in train_iter:
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        y_hat = net(X)
        loss = F.cross_entropy(y_hat, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Accumulate on the device: .item() here would sync every step.
        batch_correct = (y_hat.argmax(dim=1) == y).sum()
        loss_sum += loss.detach() * len(y)
        correct += batch_correct
        num_examples += len(y)
        if history.step_loss is not None:
            step_loss.append(loss.detach())
            step_acc.append(batch_correct / len(y))
        bar.update()
    if num_examples == 0:
        raise ValueError("train_iter yielded no examples")
    history.train_loss.append(loss_sum.item() / num_examples)
    history.train_acc.append(correct.item() / num_examples)
    history.num_examples = num_examples
    if step_loss:
        history.step_loss.extend(torch.stack(step_loss).tolist())
        history.step_acc.extend(torch.stack(step_acc).tolist())


def _length(iterable) -> int | None:
    return len(iterable) if hasattr(iterable, "__len__") else None
