"""Typical wrong answers for chapter 03's graded task.

Each entry redefines ``largest_trainable_lr`` wrongly;
tests/test_assignments.py checks that the test cell after the answer fails
with it.
"""

from functools import partial

_TEMPLATE = '''
def largest_trainable_lr(final_acc, threshold):
    trained = [{item} for lr, acc in final_acc.items() if {test}]
    return {result} if trained else {empty}
'''

_answer = partial(_TEMPLATE.format, item="lr", test="acc >= threshold",
                  result="max(trained)", empty="None")

WRONG = {
    "ch03_largest_lr": {
        "returns the smallest learning rate that trains":
            _answer(result="min(trained)"),
        "strict > on the threshold (a boundary accuracy does not count)":
            _answer(test="acc > threshold"),
        "counts a diverged run (nan) as trained":
            _answer(test="not acc < threshold"),
        "stops at the first learning rate that fails": '''
def largest_trainable_lr(final_acc, threshold):
    best = None
    for lr in sorted(final_acc):
        if not final_acc[lr] >= threshold:
            break
        best = lr
    return best
''',
        "relies on the keys being sorted": _answer(result="trained[-1]"),
        "max() of an empty list when nothing trains": '''
def largest_trainable_lr(final_acc, threshold):
    return max(lr for lr, acc in final_acc.items() if acc >= threshold)
''',
        "returns the best accuracy instead of the learning rate":
            _answer(item="acc"),
        "returns the learning rate with the best accuracy": '''
def largest_trainable_lr(final_acc, threshold):
    trained = {lr: acc for lr, acc in final_acc.items() if acc >= threshold}
    return max(trained, key=trained.get) if trained else None
''',
        "returns 0.0 instead of None when nothing trains":
            _answer(empty="0.0"),
    },
}
