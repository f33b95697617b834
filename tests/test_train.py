"""The trainer: History, determinism, evaluation, progress, cached runs."""
import re

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bnlesson import train as train_module
from bnlesson.data import BatchIterator
from bnlesson.models import deep_mlp, lenet
from bnlesson.train import History, evaluate_accuracy, train

# Tiny models: one thread is as fast as two (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def fit(iters, norm="batchnorm", **kwargs):
    kwargs = {"seed": 0, **kwargs}
    return train(lenet(norm), *iters, 2, 0.5, "cpu", **kwargs)


# --------------------------------------------------------------------------
# History and training
# --------------------------------------------------------------------------
def test_history_has_one_entry_per_epoch(iters):
    history = fit(iters)
    for values in (history.train_loss, history.train_acc, history.test_acc,
                   history.seconds):
        assert len(values) == 2
    assert history.num_examples == 96
    assert all(0 <= a <= 1 for a in history.train_acc + history.test_acc)
    assert re.fullmatch(r"loss \d\.\d{3}, train acc \d\.\d{3}, "
                        r"test acc \d\.\d{3}", history.summary())
    assert history.final["test_acc"] == history.test_acc[-1]
    assert history.step_loss is None


def test_training_learns_the_toy_task(iters):
    history = train(lenet("batchnorm"), *iters, 4, 0.5, "cpu", seed=0)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.test_acc[-1] > 0.5


def test_epochs_to_reach():
    history = History(test_acc=[0.3, 0.6, 0.8])
    assert history.epochs_to_reach(0.6) == 2
    assert history.epochs_to_reach(0.9) is None
    with pytest.raises(ValueError, match="empty"):
        History().summary()


def test_record_steps_gives_one_value_per_batch(iters):
    history = fit(iters, record_steps=True)
    assert len(history.step_loss) == len(history.step_acc) == 2 * 6


def test_same_seed_same_numbers_whatever_the_global_rng(iters):
    torch.manual_seed(1)
    first = fit(iters, norm="lecture")
    torch.manual_seed(2)  # a different net at construction: re-initialised
    second = fit(iters, norm="lecture")
    assert first.train_loss == second.train_loss
    assert first.test_acc == second.test_acc
    third = fit(iters, norm="lecture", seed=1)
    assert third.train_loss != first.train_loss


def test_seeded_run_leaves_the_global_rng_alone(iters):
    net = lenet("batchnorm")
    state = torch.get_rng_state()
    train(net, *iters, 1, 0.5, "cpu", seed=0)
    assert torch.equal(state, torch.get_rng_state())


def test_iterator_generator_is_seeded_and_restored(toy_data):
    X, y = toy_data(48)
    gen = torch.Generator().manual_seed(123)
    state = gen.get_state()
    train_iter = BatchIterator(X, y, 16, shuffle=True, generator=gen)
    runs = [train(deep_mlp(1, 8), train_iter, [(X, y)], 1, 0.1, "cpu",
                  seed=0).train_loss for _ in range(2)]
    assert runs[0] == runs[1]
    assert torch.equal(gen.get_state(), state)


def test_dataloader_and_plain_lists_work(toy_data):
    X, y = toy_data(32)
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
    history = train(deep_mlp(1, 8), loader, [(X, y)], 1, 0.1, "cpu", seed=0)
    assert history.num_examples == 32


def test_init_none_keeps_the_weights(iters):
    net = lenet()
    with torch.no_grad():
        net[0].weight.fill_(0.01)
    train(net, *iters, 1, 1e-9, "cpu", init=None)
    torch.testing.assert_close(net[0].weight, torch.full_like(net[0].weight,
                                                              0.01))


@pytest.mark.parametrize("kwargs, error, word", [
    ({"num_epochs": 0}, ValueError, "num_epochs"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"init": "he"}, ValueError, "xavier"),
    ({"cache": {"a": 1}, "seed": None}, ValueError, "seed"),
    ({"cache": "name"}, ValueError, "dict"),
])
def test_bad_arguments_say_what_to_do(iters, kwargs, error, word):
    args = {"num_epochs": 1, "lr": 0.1, "seed": 0, **kwargs}
    with pytest.raises(error, match=word):
        train(lenet(), *iters, device="cpu", **args)


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------
class FixedGuess(nn.Module):
    """Predicts class 3 for every example."""

    def forward(self, X):
        logits = torch.zeros(len(X), 10)
        logits[:, 3] = 1
        return logits


def test_evaluate_accuracy_counts_and_restores_the_mode():
    y = torch.tensor([3, 3, 1, 3, 0])
    net = FixedGuess()
    assert net.training
    batches = [(torch.zeros(2, 1), y[:2]), (torch.zeros(3, 1), y[2:])]
    assert evaluate_accuracy(net, batches) == pytest.approx(3 / 5)
    assert net.training
    with pytest.raises(ValueError, match="no examples"):
        evaluate_accuracy(net, [])


# --------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------
def test_progress_bar_unless_switched_off(iters, capfd, monkeypatch):
    fit(iters)  # the root conftest.py sets BNLESSON_PROGRESS=0
    assert capfd.readouterr() == ("", "")
    fit(iters, progress=True)
    assert "batch" in capfd.readouterr().err
    monkeypatch.delenv("BNLESSON_PROGRESS")
    fit(iters)
    assert "batch" in capfd.readouterr().err
    fit(iters, progress=False)
    assert capfd.readouterr() == ("", "")


# --------------------------------------------------------------------------
# Cached runs
# --------------------------------------------------------------------------
def test_cached_train_restores_weights_and_plain_tensors(iters, monkeypatch,
                                                         cache_dir):
    config = {"test": "cached-train"}
    net = lenet("lecture")
    history = train(net, *iters, 2, 0.5, "cpu", seed=0, cache=config)

    def no_training(*args, **kwargs):
        raise AssertionError("a cache hit must not train")

    monkeypatch.setattr(train_module, "_fit", no_training)
    torch.manual_seed(5)
    again = lenet("lecture")
    cached = train(again, *iters, 2, 0.5, "cpu", seed=0, cache=config)
    assert cached == history
    for (name, value), (_, reloaded) in zip(net.state_dict().items(),
                                            again.state_dict().items(),
                                            strict=True):
        assert torch.equal(value, reloaded), name
    # The lecture's moving statistics are plain attributes, not state.
    assert torch.equal(net[1].moving_mean, again[1].moving_mean)
    assert evaluate_accuracy(again, iters[1]) == history.test_acc[-1]
