"""Test-time augmentation on normalised image batches (N x C x H x W float32 NumPy arrays): each view is
predicted and the probabilities averaged. NumPy, so an ONNX model predicts without torch."""

from __future__ import annotations

import numpy as np

from faceattr.config import TTAConfig
from faceattr.config.choices import TTAView
from faceattr.data.transforms import pitch_rows
from faceattr.errors import FaceAttrError


def hflip(x: np.ndarray, cfg: TTAConfig, mean, std) -> np.ndarray:
    return np.ascontiguousarray(x[..., ::-1])


def shift(x: np.ndarray, cfg: TTAConfig, mean, std) -> np.ndarray:
    """Move the image right and down by `cfg.shift` of its side, filling with edge pixels."""
    n = max(1, round(cfg.shift * x.shape[-1]))
    padded = np.pad(x, ((0, 0), (0, 0), (n, 0), (n, 0)), mode="edge")
    return np.ascontiguousarray(padded[..., : x.shape[-2], : x.shape[-1]])


def _sample_axis(x: np.ndarray, src: np.ndarray, axis: int) -> np.ndarray:
    """`x` read along `axis` at the fractional positions `src`, linearly between the two neighbouring pixels."""
    size = x.shape[axis]
    low = np.minimum(np.floor(src).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    weight = (src - low).astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = len(src)
    weight = weight.reshape(shape)
    return np.take(x, low, axis=axis) * (1 - weight) + np.take(x, high, axis=axis) * weight


def _bilinear_axis(x: np.ndarray, factor: float, axis: int) -> np.ndarray:
    """Bilinear resampling along one axis by `factor`, as torch's interpolate(align_corners=False) maps pixels:
    source = (target + 0.5) / factor - 0.5, clamped at 0."""
    out = int(np.floor(x.shape[axis] * factor))
    return _sample_axis(x, np.maximum((np.arange(out) + 0.5) / factor - 0.5, 0.0), axis)


def scale(x: np.ndarray, cfg: TTAConfig, mean, std) -> np.ndarray:
    """Zoom in by `cfg.scale` around the centre."""
    h, w = x.shape[-2:]
    big = _bilinear_axis(_bilinear_axis(x, cfg.scale, x.ndim - 2), cfg.scale, x.ndim - 1)
    top, left = (big.shape[-2] - h) // 2, (big.shape[-1] - w) // 2
    return np.ascontiguousarray(big[..., top : top + h, left : left + w])


def brightness(x: np.ndarray, cfg: TTAConfig, mean, std) -> np.ndarray:
    """Pixels x (1 + brightness), done in normalised space: x_n' = (1+b) x_n + b mean / std."""
    m = np.asarray(mean, x.dtype)[:, None, None]
    s = np.asarray(std, x.dtype)[:, None, None]
    b = cfg.brightness
    return ((1 + b) * x + b * m / s).astype(x.dtype)


def pitch(x: np.ndarray, cfg: TTAConfig, mean, std) -> np.ndarray:
    """Rows remapped as `augment.pitch` remaps them, by the exponent `cfg.pitch` (bilinear between rows)."""
    return np.ascontiguousarray(_sample_axis(x, pitch_rows(x.shape[-2], cfg.pitch), x.ndim - 2))


# tta.transforms -> view(batch, cfg, mean, std), for every name config/choices.py spells
VIEWS = {
    TTAView.HFLIP: hflip,
    TTAView.SHIFT: shift,
    TTAView.SCALE: scale,
    TTAView.BRIGHTNESS: brightness,
    TTAView.PITCH: pitch,
}


NO_VIEWS = "none"  # `--tta none`: the image alone, whatever views the model's config names
VIEWS_HELP = "test-time views, e.g. hflip,shift,scale,brightness; none: the image alone; not given: each model's own"


def parse_views(text: str | None) -> list[str] | None:
    """`--tta` as every command and benchmark spells it: not given (None) keeps each model's own views; `none` (or
    an empty string) predicts the image alone; else view names separated by commas, checked."""
    if text is None:
        return None
    names = [v.strip() for v in text.split(",") if v.strip() and v.strip() != NO_VIEWS]
    check_views(names)
    return names


def check_views(names: list[str]) -> None:
    """Unknown view names fail here with the valid ones listed, not as a KeyError at the first batch."""
    unknown = [name for name in names if name not in VIEWS]
    if unknown:
        raise FaceAttrError(
            f"unknown test-time view {unknown[0]!r}; valid: {', '.join(VIEWS)} (or {NO_VIEWS} for the image alone)"
        )


def tta_views(x: np.ndarray, cfg: TTAConfig, mean, std) -> list[np.ndarray]:
    """The original batch followed by one augmented copy per configured transform."""
    return [x] + [VIEWS[name](x, cfg, mean, std) for name in cfg.transforms]
