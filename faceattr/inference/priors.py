"""Class shares where a model is used differ from those it was trained on ("label shift"), and a classifier's
probabilities carry its training shares: a drawn-mask set is 5/7 worn, 1/7 incorrect, 1/7 bare because of how
`synth-masks` draws people, while among real crowd faces about 1 masked face in 20 wears it wrong. Bayes' rule
moves each probability to the shares of where the model is used: p'(c|x) is proportional to
p(c|x) * target(c) / trained(c) (Saerens, Latinne & Decaestecker, Neural Computation 2002).

`train` records the shares each head saw (`priors.trained`); `priors.target` (a config key, kept in the
checkpoint, or `predict --priors`) gives the shares to move to. Estimating them from the unlabelled photos instead
(the same paper's EM) was measured and is not offered: docs/masks.md.
"""

from __future__ import annotations

import numpy as np

from faceattr.config import PriorsConfig
from faceattr.errors import ConfigError
from faceattr.labels import CLASSIFICATION_TASKS


def reweight(probs: np.ndarray, trained, target) -> np.ndarray:
    """Bayes' rule for other class shares: each row of `probs` (N x C) times target / trained, renormalised."""
    adjusted = np.asarray(probs, dtype=np.float64) * (
        np.asarray(target, dtype=np.float64) / np.asarray(trained, dtype=np.float64)
    )
    return (adjusted / adjusted.sum(axis=1, keepdims=True)).astype(np.asarray(probs).dtype)


def check_priors(cfg: PriorsConfig, tasks: list[str], source: object) -> None:
    """Refuse target shares for a head the model lacks, or whose training shares it does not record."""
    for head in cfg.target:
        if head not in CLASSIFICATION_TASKS or head not in tasks:
            raise ConfigError(f"{source}: priors.target names '{head}', but the model's heads are {', '.join(tasks)}")
        if head not in cfg.trained:
            raise ConfigError(
                f"{source}: the model does not record the class shares its '{head}' head was trained on (trained "
                f"before faceattr kept them), so priors.target cannot be applied; retrain it, or drop the priors"
            )


def apply_priors(probs: dict[str, np.ndarray], cfg: PriorsConfig) -> dict[str, np.ndarray]:
    """`probs` with every head named in `cfg.target` moved from its training shares to those."""
    if not cfg.target:
        return probs
    out = dict(probs)
    for head, target in cfg.target.items():
        if head in out:
            out[head] = reweight(out[head], cfg.trained[head], target)
    return out


def parse_priors(text: str) -> dict[str, list[float]]:
    """`--priors` text -> target shares per head: 'mask=0.83,0.05,0.12' (';' between heads), or 'none'."""
    if text.strip().lower() == "none":
        return {}
    targets: dict[str, list[float]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        head, _, values = part.partition("=")
        try:
            targets[head.strip()] = [float(v) for v in values.split(",")]
        except ValueError:
            raise ConfigError(
                f"--priors {text!r}: give HEAD=share,share,... per head, e.g. mask=0.83,0.05,0.12, or none"
            ) from None
    return targets
