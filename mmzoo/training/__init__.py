"""``mmzoo.training``: fit and evaluate, strategies and precision, fine-tuning, plots.

* ``train``: ``train_and_evaluate``, the main job (``mmzoo train``).
* ``distribute``: ``tf.distribute`` strategies, precision policies, chief-only outputs.
* ``distributed_loop``: the custom loop used under ``MultiWorkerMirroredStrategy``.
* ``finetune``: freeze/unfreeze branches, per-branch learning rates, two-phase fit.
* ``plots``: training curves and confusion matrices.
"""

from mmzoo.training import distribute, finetune, plots
from mmzoo.training.train import train_and_evaluate, weights_digest

__all__ = ["distribute", "finetune", "plots", "train_and_evaluate", "weights_digest"]
