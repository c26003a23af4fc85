"""The label scheme shared by every reader, model and report.

mask:    0 = worn, 1 = worn incorrectly, 2 = not worn
gender:  0 = male, 1 = female
age bin: 0 = under 30, 1 = 30 to under the old-age threshold, 2 = at or over it
18-class code: mask * 6 + gender * 3 + age_bin (the mask competition's numbering).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MASK_NAMES: tuple[str, ...] = ("wear", "incorrect", "not_wear")
GENDER_NAMES: tuple[str, ...] = ("male", "female")
MAX_AGE = 100  # the exact-age head is a softmax over ages 0..MAX_AGE (as in DEX)
TASKS: tuple[str, ...] = ("mask", "gender", "age_bin", "age")
CLASSIFICATION_TASKS: tuple[str, ...] = ("mask", "gender", "age_bin")
TASK_CLASSES: dict[str, int] = {"mask": 3, "gender": 2, "age_bin": 3, "age": MAX_AGE + 1}
NUM_CLASSES = 18
YOUNG_THRESHOLD = 30
DEFAULT_OLD_THRESHOLD = 60


def classified_tasks(heads: list[str]) -> list[str]:
    """The classes a model with these heads is scored on: mask, gender, and the age bin (from its own head or the
    exact-age one)."""
    tasks = [t for t in ("mask", "gender") if t in heads]
    return tasks + (["age_bin"] if "age_bin" in heads or "age" in heads else [])


def validation_metrics(heads: list[str]) -> list[str]:
    """The `val/*` names such a model logs every validation: what `train.monitor` can choose from."""
    tasks = classified_tasks(heads)
    names = ["val/loss", "val/error", *(f"val/{kind}_{t}" for t in tasks for kind in ("f1", "acc"))]
    names += ["val/f1_18", "val/acc_18"] if len(tasks) == 3 else []
    return names + (["val/age_mae", "val/age_cs5"] if "age" in heads else [])


def better_direction(metric: str) -> str | None:
    """Which way a metric improves: min for losses, errors and MAE, max for scores (F1, accuracy, CS@5), None for
    a name this cannot tell."""
    if metric.endswith(("loss", "error", "mae")) or "/loss_" in metric:
        return "min"
    return "max" if any(part in metric for part in ("f1", "acc", "cs5")) else None


# competition file stem -> mask label
MASK_FILE_STEMS: dict[str, int] = {
    "mask1": 0,
    "mask2": 0,
    "mask3": 0,
    "mask4": 0,
    "mask5": 0,
    "incorrect_mask": 1,
    "normal": 2,
}


def expected_age(age_probs):
    """Predicted age = expectation of the 101-way age distribution (DEX); (N, 101) -> (N,)."""
    p = np.asarray(age_probs, dtype=np.float64)
    return p @ np.arange(p.shape[-1], dtype=np.float64)


def age_bin_names(old_threshold: int = DEFAULT_OLD_THRESHOLD) -> tuple[str, ...]:
    """Readable age-bin names for a given old-age threshold."""
    return (f"<{YOUNG_THRESHOLD}", f"{YOUNG_THRESHOLD}-{old_threshold - 1}", f">={old_threshold}")


# names at the default threshold (evaluate and the model card name bins for the model's own threshold)
AGE_BIN_NAMES: tuple[str, ...] = age_bin_names(DEFAULT_OLD_THRESHOLD)
CLASS_NAMES: dict[str, tuple[str, ...]] = {"mask": MASK_NAMES, "gender": GENDER_NAMES, "age_bin": AGE_BIN_NAMES}


def code18(mask, gender, age_bin):
    """The 18-class arithmetic, in one place: mask * 6 + gender * 3 + age_bin (numbers, arrays or tensors)."""
    return mask * 6 + gender * 3 + age_bin


UNKNOWN = -1  # a label a dataset does not give (losses ignore it, metrics leave it out)


def known_code18(mask, gender, age_bin):
    """The 18-class code where all three parts are known, else UNKNOWN (-1); numbers or arrays."""
    m, g, a = (np.asarray(x) for x in (mask, gender, age_bin))
    code = np.where((m >= 0) & (g >= 0) & (a >= 0), code18(m, g, a), UNKNOWN).astype(np.int64)
    return int(code) if code.ndim == 0 else code


def age_to_bin(age, old_threshold: int = DEFAULT_OLD_THRESHOLD):
    """Age in years (scalar or array) -> age bin 0/1/2."""
    if old_threshold <= YOUNG_THRESHOLD:
        raise ValueError(f"old-age threshold must be above {YOUNG_THRESHOLD}, got {old_threshold}")
    a = np.asarray(age, dtype=float)
    bins = (a >= YOUNG_THRESHOLD).astype(np.int64) + (a >= old_threshold).astype(np.int64)
    return int(bins) if bins.ndim == 0 else bins


def encode(mask, gender, age_bin):
    """(mask, gender, age_bin) -> 18-class code; works on scalars and arrays."""
    m, g, a = (np.asarray(x) for x in (mask, gender, age_bin))
    for name, value, n in (("mask", m, 3), ("gender", g, 2), ("age_bin", a, 3)):
        if np.any((value < 0) | (value >= n)):
            raise ValueError(f"{name} must be in 0..{n - 1}, got {value.tolist()}")
    code = code18(m, g, a)
    return int(code) if code.ndim == 0 else code


def decode(code):
    """18-class code -> (mask, gender, age_bin); works on scalars and arrays."""
    c = np.asarray(code)
    if np.any((c < 0) | (c >= NUM_CLASSES)):
        raise ValueError(f"class code must be in 0..17, got {c.tolist()}")
    parts = (c // 6, (c // 3) % 2, c % 3)
    if c.ndim == 0:
        return tuple(int(p) for p in parts)
    return parts


@dataclass(frozen=True)
class ClassRow:
    code: int
    mask: str
    gender: str
    age_bin: str


def class_table(old_threshold: int = DEFAULT_OLD_THRESHOLD) -> list[ClassRow]:
    """All 18 classes with readable names, in code order."""
    ages = age_bin_names(old_threshold)
    return [ClassRow(c, MASK_NAMES[m], GENDER_NAMES[g], ages[a]) for c in range(NUM_CLASSES) for m, g, a in [decode(c)]]


def class_name(code: int, old_threshold: int = DEFAULT_OLD_THRESHOLD) -> str:
    """Short readable name of an 18-class code, e.g. '7 wear/female/30-59'."""
    row = class_table(old_threshold)[code]
    return f"{row.mask}/{row.gender}/{row.age_bin}"


def decide(probs: dict, old_threshold: int = DEFAULT_OLD_THRESHOLD) -> dict:
    """Per-task probabilities -> labels: argmax per classification head; `age_years` (expectation) from the
    exact-age head, which also gives the age bin when there is no age-bin head; label18 when all parts exist."""
    out = {task: np.asarray(p).argmax(1) for task, p in probs.items() if task in CLASSIFICATION_TASKS}
    if "age" in probs:
        out["age_years"] = expected_age(probs["age"])
        if "age_bin" not in out:
            out["age_bin"] = np.asarray(age_to_bin(out["age_years"], old_threshold), dtype=np.int64).reshape(-1)
    if all(t in out for t in CLASSIFICATION_TASKS):
        out["label18"] = code18(out["mask"], out["gender"], out["age_bin"])
    return out
