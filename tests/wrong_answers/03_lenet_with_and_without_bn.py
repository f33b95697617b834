"""Typical wrong answers for chapter 03's graded task.

Each entry redefines ``largest_trainable_lr`` wrongly; tests/test_assignments.py
checks that the test cell after the answer fails with it.
"""

WRONG = {
    "ch03_largest_lr": {
        "returns the smallest learning rate that trains": '''
def largest_trainable_lr(final_acc, threshold):
    trained = [lr for lr, acc in final_acc.items() if acc >= threshold]
    return min(trained) if trained else None
''',
        "strict > on the threshold (a boundary accuracy does not count)": '''
def largest_trainable_lr(final_acc, threshold):
    trained = [lr for lr, acc in final_acc.items() if acc > threshold]
    return max(trained) if trained else None
''',
        "counts a diverged run (nan) as trained": '''
def largest_trainable_lr(final_acc, threshold):
    trained = [lr for lr, acc in final_acc.items() if not acc < threshold]
    return max(trained) if trained else None
''',
        "stops at the first learning rate that fails": '''
def largest_trainable_lr(final_acc, threshold):
    best = None
    for lr in sorted(final_acc):
        if not final_acc[lr] >= threshold:
            break
        best = lr
    return best
''',
        "relies on the keys being sorted": '''
def largest_trainable_lr(final_acc, threshold):
    trained = [lr for lr, acc in final_acc.items() if acc >= threshold]
    return trained[-1] if trained else None
''',
        "max() of an empty list when nothing trains": '''
def largest_trainable_lr(final_acc, threshold):
    return max(lr for lr, acc in final_acc.items() if acc >= threshold)
''',
        "returns the best accuracy instead of the learning rate": '''
def largest_trainable_lr(final_acc, threshold):
    trained = [acc for lr, acc in final_acc.items() if acc >= threshold]
    return max(trained) if trained else None
''',
        "returns the learning rate with the best accuracy": '''
def largest_trainable_lr(final_acc, threshold):
    trained = {lr: acc for lr, acc in final_acc.items() if acc >= threshold}
    return max(trained, key=trained.get) if trained else None
''',
        "returns 0.0 instead of None when nothing trains": '''
def largest_trainable_lr(final_acc, threshold):
    trained = [lr for lr, acc in final_acc.items() if acc >= threshold]
    return max(trained) if trained else 0.0
''',
    },
}
