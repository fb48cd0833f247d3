"""Training and ONNX export of the cistrack enhancer models (AttLight-Enhancer teacher and student).

Modules: :mod:`~cistrack_training.encode` (the reference input encoding of ``models/CONTRACT.md``),
:mod:`~cistrack_training.simulate` (simulated training windows), :mod:`~cistrack_training.sources`
(every labelled source: simulated, iEnhancer, K562 candidates), :mod:`~cistrack_training.model`,
:mod:`~cistrack_training.losses`, :mod:`~cistrack_training.metrics`,
:mod:`~cistrack_training.train` (0.1.0, simulated), :mod:`~cistrack_training.train_sources` (0.2.0, every
source) and :mod:`~cistrack_training.export` (command-line entry points), the ``link_*`` modules
(the enhancer-gene link model),
:mod:`~cistrack_training.config`.

The package is meant to be used from its source tree (``pip install -e models/training`` or
``PYTHONPATH=src``): relative paths in configs resolve against ``models/training``.
"""

__version__ = "0.1.0"
