"""bnlesson: helpers for the Batch Normalization teaching series.

Modules: ``data`` (Fashion-MNIST, offline subset and full set), ``norms``
(from-scratch BN and the norm family), ``models`` (LeNet, deep MLP),
``train`` (the trainer and its History), ``cache`` (cached runs),
``diagnostics`` (per-layer statistics), ``running`` (running averages,
Kalman gain, precise BN), ``landscape`` (why BN works: covariate shift,
noisy BN, loss landscape probes), ``practice`` (folding BN, frozen BN,
skewed batches), ``plotting`` (figure helpers that take an
``ax``), ``checks`` (parity tables; ``forbidden`` for graded tests),
``distributed`` (gloo launcher and synchronized BN, chapter 08),
``lessons`` (run the series headless), ``assignments`` and ``grading``
(the chapters as nbgrader assignments; teacher side). Importing the
package reads no data.
"""
from bnlesson.utils import get_device, set_seed, setup

__version__ = "0.1.0"
__all__ = ["get_device", "set_seed", "setup", "__version__"]
