"""Draw a face mask onto a photo from MTCNN's five landmarks and the face box.

Geometry lives in a face frame: origin between the eyes, x along the eye line, y down the face, one unit = the
distance between the eyes, so a mask follows head roll and scale. The outline runs from the nose bridge (or lower,
for the incorrect ways of wearing one) down a super-ellipse that follows the jaw to under the chin. Realism comes
from the texture (pleats, a KF94 seam and fold, printed patterns, cloth noise), shading taken from the face's own
brightness, a soft edge and ear-loop hints.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WEARS = ("correct", "nose_exposed", "chin", "mouth_only")
INCORRECT_WEARS = WEARS[1:]
SHAPES = ("surgical", "cloth", "kf94")
PATTERNS = ("plain", "stripes", "dots", "checks")

SURGICAL_COLORS = [(150, 190, 225), (235, 236, 238), (40, 40, 45), (232, 184, 196), (170, 215, 200)]
KF94_COLORS = [(238, 238, 236), (35, 35, 38), (150, 150, 155), (214, 198, 178)]
CLOTH_COLORS = [
    (30, 40, 80),
    (120, 30, 40),
    (60, 90, 60),
    (200, 200, 190),
    (90, 60, 120),
    (230, 150, 60),
    (70, 70, 70),
    (160, 120, 90),
]


@dataclass(frozen=True)
class MaskStyle:
    shape: str  # surgical | cloth | kf94
    color: tuple[int, int, int]
    pattern: str = "plain"  # plain | stripes | dots | checks (cloth only)
    pattern_color: tuple[int, int, int] = (255, 255, 255)
    pattern_scale: float = 6.0  # repeats per eye distance


@dataclass(frozen=True)
class Rendered:
    image: np.ndarray  # HxWx3 uint8, the masked photo
    alpha: np.ndarray  # HxW float32 in [0, 1], the mask's coverage (ear loops excluded)


def random_style(rng: np.random.Generator) -> MaskStyle:
    shape = SHAPES[rng.choice(3, p=[0.4, 0.35, 0.25])]
    if shape == "surgical":
        return MaskStyle(shape, SURGICAL_COLORS[rng.integers(len(SURGICAL_COLORS))])
    if shape == "kf94":
        return MaskStyle(shape, KF94_COLORS[rng.integers(len(KF94_COLORS))])
    color = CLOTH_COLORS[rng.integers(len(CLOTH_COLORS))]
    pattern = PATTERNS[rng.choice(4, p=[0.4, 0.2, 0.2, 0.2])]
    pattern_color = tuple(int(c) for c in rng.integers(0, 256, 3))
    return MaskStyle(shape, color, pattern, pattern_color, float(rng.uniform(4.0, 9.0)))


@dataclass(frozen=True)
class FaceFrame:
    """Eye-centred coordinates: image point = origin + unit * (u * x_axis + v * y_axis)."""

    origin: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray
    unit: float

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> FaceFrame:
        lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
        left_eye, right_eye = lm[0], lm[1]
        across = right_eye - left_eye
        unit = float(np.hypot(*across))
        if unit < 2.0:
            raise ValueError(f"eyes {unit:.1f} px apart: landmarks too small or degenerate to place a mask")
        x_axis = across / unit
        return cls((left_eye + right_eye) / 2, x_axis, np.array([-x_axis[1], x_axis[0]]), unit)

    def to_face(self, points: np.ndarray) -> np.ndarray:
        rel = (np.asarray(points, dtype=np.float64) - self.origin) / self.unit
        return np.stack([rel @ self.x_axis, rel @ self.y_axis], axis=-1)

    def to_image(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, dtype=np.float64)
        return self.origin + self.unit * (uv[..., :1] * self.x_axis + uv[..., 1:] * self.y_axis)


@dataclass(frozen=True)
class Outline:
    """A mask's extent in face units: top edge height, bottom, half-width, centre and the super-ellipse power."""

    top: float
    bottom: float
    half_width: float
    centre: float
    power: float
    nose_peak: float  # how far the top edge rises over the nose (face units)

    def polygon(self, points: int = 64) -> np.ndarray:
        """The outline as (u, v) points: an arched top edge, then the jaw-following lower curve."""
        xs = np.linspace(-1.0, 1.0, points)
        top = np.stack([self.centre + xs * self.half_width, self.top - self.nose_peak * (1 - np.abs(xs)) ** 1.5], 1)
        theta = np.linspace(0.0, np.pi, points)
        c, s = np.cos(theta), np.sin(theta)
        e = 2.0 / self.power
        lower = np.stack(
            [
                self.centre + self.half_width * np.sign(c) * np.abs(c) ** e,
                self.top + (self.bottom - self.top) * np.abs(s) ** e,
            ],
            1,
        )
        return np.concatenate([top, lower])  # lower runs right -> left, closing the loop


def face_geometry(landmarks: np.ndarray, box) -> tuple[FaceFrame, dict[str, float]]:
    """The face frame and the key heights (nose, mouth, chin) and half-width, in face units."""
    frame = FaceFrame.from_landmarks(landmarks)
    uv = frame.to_face(np.asarray(landmarks, dtype=np.float64).reshape(5, 2))
    nose, mouth = uv[2], (uv[3] + uv[4]) / 2
    x1, y1, x2, y2 = box
    corners = frame.to_face(np.array([[x1, y2], [x2, y2], [x1, y1], [x2, y1]], dtype=np.float64))
    box_bottom = float(corners[:2, 1].mean())
    box_half = float(abs(corners[1, 0] - corners[0, 0]) / 2)
    nose_v = max(float(nose[1]), 0.3)
    mouth_v = max(float(mouth[1]), nose_v + 0.2)
    chin_v = float(np.clip(box_bottom, mouth_v + 0.4, mouth_v + 1.1))
    half = float(np.clip(box_half, 0.85, 1.35))
    centre = 0.5 * float(nose[0]) + 0.5 * float(mouth[0])  # follows a turned head
    return frame, {"nose": nose_v, "mouth": mouth_v, "chin": chin_v, "half": half, "centre": centre}


def mask_outline(geometry: dict[str, float], wear: str, shape: str) -> Outline:
    """Where the mask sits for a way of wearing it (`WEARS`)."""
    g = geometry
    power = {"surgical": 3.2, "cloth": 2.4, "kf94": 1.7}[shape]
    peak = {"surgical": 0.06, "cloth": 0.12, "kf94": 0.2}[shape]
    if wear == "correct":
        return Outline(0.42 * g["nose"], g["chin"] + 0.12, g["half"] * 0.97, g["centre"], power, peak)
    if wear == "nose_exposed":  # pulled under the nose: nostrils and tip show, mouth covered
        top = g["nose"] + 0.3 * (g["mouth"] - g["nose"])
        return Outline(top, g["chin"] + 0.12, g["half"] * 0.95, g["centre"], power, 0.0)
    if wear == "chin":  # pulled down to the chin: nose and mouth show
        top = g["mouth"] + 0.35 * (g["chin"] - g["mouth"])
        return Outline(top, g["chin"] + 0.2, g["half"] * 0.85, g["centre"], power, 0.0)
    if wear == "mouth_only":  # a small patch over the mouth, below the nose, above the chin
        top = g["nose"] + 0.35 * (g["mouth"] - g["nose"])
        bottom = g["mouth"] + 0.55 * (g["chin"] - g["mouth"])
        return Outline(top, bottom, g["half"] * 0.72, g["centre"], power, 0.0)
    raise ValueError(f"unknown wear {wear!r}; choose one of {', '.join(WEARS)}")


def _fill(shape: tuple[int, int], polygon_xy: np.ndarray) -> np.ndarray:
    """Anti-aliased polygon coverage in [0, 1] (sub-pixel vertices through cv2's fixed-point shift)."""
    canvas = np.zeros(shape, np.uint8)
    pts = np.round(polygon_xy * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def _texture(uv: np.ndarray, outline: Outline, style: MaskStyle, rng: np.random.Generator) -> np.ndarray:
    """Mask colour per pixel (HxWx3 float in 0..255), with pleats, seams or a print in face coordinates."""
    u, v = uv[..., 0], uv[..., 1]
    color = np.empty((*u.shape, 3), np.float32)
    color[:] = style.color
    rel_v = (v - outline.top) / max(outline.bottom - outline.top, 1e-3)
    rel_u = (u - outline.centre) / max(outline.half_width, 1e-3)
    light = np.ones_like(u, dtype=np.float32)
    if style.shape == "surgical":
        for k, at in enumerate((0.3, 0.5, 0.7)):  # three pleats: a dark fold line with a lit band above
            d = rel_v - at - 0.02 * (k - 1)
            light -= 0.22 * np.exp(-((d / 0.018) ** 2))
            light += 0.08 * np.exp(-(((d + 0.045) / 0.03) ** 2))
        light -= 0.1 * np.exp(-(((np.abs(rel_u) - 0.98) / 0.03) ** 2))  # bound side edges
    elif style.shape == "kf94":
        light -= 0.2 * np.exp(-((rel_u / 0.015) ** 2))  # the vertical seam
        light -= 0.12 * np.exp(-(((rel_v - 0.45) / 0.02) ** 2))  # the horizontal fold
        light += 0.08 * np.clip(rel_v - 0.45, -0.45, 0) * -1  # upper panel catches more light
    else:
        scale = style.pattern_scale
        pu, pv = u * scale, v * scale
        if style.pattern == "stripes":
            on = (np.sin(2 * np.pi * pv) > 0.55).astype(np.float32)
        elif style.pattern == "dots":
            on = (((pu % 1) - 0.5) ** 2 + ((pv % 1) - 0.5) ** 2 < 0.06).astype(np.float32)
        elif style.pattern == "checks":
            on = ((np.floor(pu) + np.floor(pv)) % 2).astype(np.float32) * 0.6
        else:
            on = np.zeros_like(u, dtype=np.float32)
        on = cv2.GaussianBlur(on, (0, 0), 0.6)
        color = color * (1 - on[..., None]) + np.asarray(style.pattern_color, np.float32) * on[..., None]
        light += rng.normal(0, 0.035, u.shape).astype(np.float32)  # woven cloth grain
    light *= 1.0 - 0.22 * np.clip(rel_u, -1, 1) ** 2  # the mask curves away from the camera at the sides
    return color * light[..., None]


def render_mask(
    image: np.ndarray,
    landmarks: np.ndarray,
    box,
    wear: str = "correct",
    style: MaskStyle | None = None,
    rng: np.random.Generator | None = None,
) -> Rendered:
    """`image` (HxWx3 uint8 RGB) with a mask drawn on the face given by its landmarks (5x2) and box (x1,y1,x2,y2)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    style = style or random_style(rng)
    frame, geometry = face_geometry(landmarks, box)
    outline = mask_outline(geometry, wear, style.shape)
    height, width = image.shape[:2]
    polygon = frame.to_image(outline.polygon())
    alpha = _fill((height, width), polygon)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, 0.012 * frame.unit))  # soft edge, like fabric against skin

    x0, y0 = np.floor(polygon.min(0) - 4).astype(int).clip(0)
    x1, y1 = np.ceil(polygon.max(0) + 4).astype(int)
    x1, y1 = min(x1, width), min(y1, height)
    out = image.astype(np.float32)
    if x1 > x0 and y1 > y0:
        ys, xs = np.mgrid[y0:y1, x0:x1]
        uv = frame.to_face(np.stack([xs, ys], -1).astype(np.float64))
        texture = _texture(uv, outline, style, rng)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        lit = cv2.GaussianBlur(gray, (0, 0), max(1.0, 0.25 * frame.unit))[y0:y1, x0:x1]
        a = alpha[y0:y1, x0:x1]
        mean_lit = float((lit * a).sum() / max(a.sum(), 1e-6)) or 1.0
        shade = np.clip(1 + 0.8 * (lit / mean_lit - 1), 0.55, 1.35)  # the face's own light falls on the mask
        painted = np.clip(texture * shade[..., None], 0, 255)
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - a[..., None]) + painted * a[..., None]
    out = _ear_loops(out, frame, outline, geometry, style, alpha)
    return Rendered(np.clip(out, 0, 255).astype(np.uint8), alpha)


def _ear_loops(out, frame: FaceFrame, outline: Outline, geometry: dict, style: MaskStyle, alpha) -> np.ndarray:
    """Thin strings from the mask's side corners towards the ears, drawn only outside the mask."""
    loops = np.zeros(alpha.shape, np.float32)
    thickness = max(1, round(0.035 * frame.unit))
    ear_v = 0.35 * geometry["nose"] + 0.1
    for side in (-1, 1):
        ear = (outline.centre + side * (geometry["half"] + 0.02), ear_v)
        starts = [
            (outline.centre + side * outline.half_width * 0.98, outline.top + 0.05),
            (outline.centre + side * outline.half_width * 0.8, outline.top + 0.75 * (outline.bottom - outline.top)),
        ]
        for start in starts:
            pts = frame.to_image(np.array([start, ear]))
            p0, p1 = (tuple(round(c * 16) for c in p) for p in pts)
            layer = np.zeros(alpha.shape, np.uint8)
            cv2.line(layer, p0, p1, 255, thickness, lineType=cv2.LINE_AA, shift=4)
            loops = np.maximum(loops, layer.astype(np.float32) / 255.0)
    loops *= 0.75 * (1 - alpha)
    string = np.asarray(style.color, np.float32) * 0.85 if style.shape != "surgical" else np.full(3, 235.0)
    return out * (1 - loops[..., None]) + string * loops[..., None]
