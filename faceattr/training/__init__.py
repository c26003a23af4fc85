"""The training stage. `fit.py`: the run folder, the Lightning trainer and `train()`; beside it what one training
needs (`batch_size.py`: data.batch_size=auto, `callbacks.py`, `checkpoint_io.py`: atomic checkpoints,
`runinfo.py`: what produced a run). Experiments made of several trainings sit on top: `per_task.py` (a model per
task), `cross_validation.py` (k folds, which evaluates each) and `tune.py` (Optuna)."""

from faceattr.training.fit import TrainResult, train

__all__ = ["TrainResult", "train"]
