"""Draw a face mask onto a photo from the detector's five landmarks (MTCNN's order) and the face box.

Geometry lives in a face frame: origin between the eyes, x along the eye line, y down the face, one unit = the
distance between the eyes, so a mask follows head roll and scale. The outline runs from the nose bridge (or lower,
for the incorrect ways of wearing one) down a super-ellipse that follows the jaw to under the chin.

A model must not be able to tell a drawn mask from a real one by its drawing, so every cue varies: shapes
(surgical, cloth, KF94, N95 cups with or without a valve, clear plastic), colours (the usual palette and any hue),
prints, fabric grain and wrinkles, an edge that is not perfectly smooth, shading from the face's own light and a
soft shadow on the skin around it, ear loops. Incorrect wear varies too (nose out, on the chin, under the chin,
mouth only, hanging from one ear, the cloth hanging loose off the nose), and a mask pulled down sags between its ear
loops as real ones do; synth/occluders.py draws what is *not* a mask over the same region.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WEARS = ("correct", "nose_exposed", "chin", "mouth_only", "under_chin", "one_ear", "loose")
INCORRECT_WEARS = WEARS[1:]
# how far a mask pulled down (nose_exposed, chin, under_chin) sags between its ear loops, in face units: its sides
# ride up the cheeks while the middle stays where the wear puts it (real ones do; a level top edge was all we drew)
PULLED_DOWN_SAG = (0.0, 0.45)
PULLED_DOWN = ("nose_exposed", "chin", "under_chin")
# "loose": the sides sit where a correct fit's do, the cloth hangs off the nose in the middle, its lowest point this
# share of the way from the nose tip down to the mouth (the tip and nostrils show, the mouth stays covered)
LOOSE_DROP = (0.1, 0.5)
# a correct fit's top edge, as a share of the eye line -> nose tip height: from under the eyes down to just above the
# tip, as real masks slip down the nose and still cover it (ending at 0.55, real masks worn lower were called
# "incorrect": docs/experiments/results/rm_lownose_*.md)
CORRECT_TOP = (0.15, 0.8)
FIXED_CORRECT_TOP = 0.42  # the fit drawn without an rng (fixtures), and where a loose mask's sides sit
SHAPES = ("surgical", "cloth", "kf94", "n95", "clear")
SHAPE_WEIGHTS = (0.32, 0.3, 0.18, 0.12, 0.08)
PATTERNS = ("plain", "stripes", "dots", "checks")

# Palettes as {RGB: weight}, weighted as real masks come: on masks-real's dev half, the colour at the mouth of a worn
# mask is dark (black, navy, charcoal) about 36 % of the time, white or light grey 29 %, light blue 9 %, anything else
# 26 %; drawn masks were 21 / 18 / 12 / 49 %, and the dark and white ones were the real masks most often missed.
SURGICAL_COLORS = {
    (150, 190, 225): 0.35,
    (235, 236, 238): 0.25,
    (40, 40, 45): 0.25,
    (232, 184, 196): 0.07,
    (170, 215, 200): 0.08,
}
KF94_COLORS = {(238, 238, 236): 0.4, (35, 35, 38): 0.4, (150, 150, 155): 0.1, (214, 198, 178): 0.1}
CLOTH_COLORS = {
    (25, 25, 28): 0.3,
    (30, 40, 80): 0.15,
    (70, 70, 70): 0.15,
    (200, 200, 190): 0.1,
    (120, 30, 40): 0.06,
    (60, 90, 60): 0.06,
    (90, 60, 120): 0.06,
    (230, 150, 60): 0.04,
    (160, 120, 90): 0.08,
}


@dataclass(frozen=True)
class MaskStyle:
    shape: str  # surgical | cloth | kf94
    color: tuple[int, int, int]
    pattern: str = "plain"  # plain | stripes | dots | checks (cloth only)
    pattern_color: tuple[int, int, int] = (255, 255, 255)
    pattern_scale: float = 6.0  # repeats per eye distance
    valve: bool = False  # n95: an exhalation valve on one side
    wrinkle: float = 0.06  # strength of low-frequency creases in the shading
    grain: float = 0.03  # fine fabric noise
    edge_jitter: float = 0.02  # how far the edge wanders from the smooth outline (face units)


@dataclass(frozen=True)
class Rendered:
    image: np.ndarray  # HxWx3 uint8, the masked photo
    alpha: np.ndarray  # HxW float32 in [0, 1], the mask's coverage (ear loops excluded)


def _any_hue(rng: np.random.Generator) -> tuple[int, int, int]:
    """A random fabric colour: any hue, muted or saturated, dark or light."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(20, 230), rng.integers(35, 245)]]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _pick(palette: dict[tuple[int, int, int], float], rng: np.random.Generator) -> tuple[int, int, int]:
    colours = list(palette)
    weights = np.array(list(palette.values()))
    return colours[rng.choice(len(colours), p=weights / weights.sum())]


def random_style(rng: np.random.Generator) -> MaskStyle:
    shape = SHAPES[rng.choice(len(SHAPES), p=SHAPE_WEIGHTS)]
    wrinkle, grain = float(rng.uniform(0.02, 0.12)), float(rng.uniform(0.01, 0.06))
    jitter = float(rng.uniform(0.0, 0.035))
    extra = {"wrinkle": wrinkle, "grain": grain, "edge_jitter": jitter}
    if shape == "surgical":
        color = _pick(SURGICAL_COLORS, rng) if rng.random() < 0.75 else _any_hue(rng)
        return MaskStyle(shape, color, **extra)
    if shape in ("kf94", "n95"):
        color = _pick(KF94_COLORS, rng) if rng.random() < 0.8 else _any_hue(rng)
        return MaskStyle(shape, color, valve=shape == "n95" and rng.random() < 0.35, **extra)
    if shape == "clear":
        return MaskStyle(shape, (225, 232, 236), wrinkle=0.02, grain=0.0, edge_jitter=0.0)
    color = _pick(CLOTH_COLORS, rng) if rng.random() < 0.7 else _any_hue(rng)
    pattern = PATTERNS[rng.choice(4, p=[0.45, 0.2, 0.15, 0.2])]
    pattern_color = tuple(int(c) for c in rng.integers(0, 256, 3))
    return MaskStyle(shape, color, pattern, pattern_color, float(rng.uniform(4.0, 9.0)), **extra)


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
    nose_peak: float  # how far the top edge rises over the nose (face units); < 0: how far it sags there

    def polygon(self, points: int = 64) -> np.ndarray:
        """The outline as (u, v) points: an arched (or sagging) top edge, then the jaw-following lower curve."""
        xs = np.linspace(-1.0, 1.0, points)
        rise = (1 - np.abs(xs)) ** 1.5 if self.nose_peak >= 0 else 1 - xs**2  # fabric hangs in a smooth curve
        top = np.stack([self.centre + xs * self.half_width, self.top - self.nose_peak * rise], 1)
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


def mask_outline(geometry: dict[str, float], wear: str, shape: str, rng: np.random.Generator | None = None) -> Outline:
    """Where the mask sits for a way of wearing it (`WEARS`); with `rng`, a correctly worn mask fits a little higher
    or lower, longer or wider, as real ones do (so an imperfect fit is not taught as "incorrect")."""
    g = geometry
    power = {"surgical": 3.2, "cloth": 2.4, "kf94": 1.7, "n95": 1.5, "clear": 2.6}[shape]
    peak = {"surgical": 0.06, "cloth": 0.12, "kf94": 0.2, "n95": 0.15, "clear": 0.1}[shape]
    if wear == "correct":
        top, below, wide = (
            (FIXED_CORRECT_TOP, 0.12, 0.97)
            if rng is None
            else (rng.uniform(*CORRECT_TOP), rng.uniform(0.0, 0.25), rng.uniform(0.9, 1.05))
        )
        return Outline(top * g["nose"], g["chin"] + below, g["half"] * wide, g["centre"], power, peak)
    if wear in PULLED_DOWN:  # the top edge's middle at the height `_pulled_down_middle` names, sides raised by a sag
        sag = 0.0 if rng is None else float(rng.uniform(*PULLED_DOWN_SAG))
        middle, bottom, wide = _pulled_down_middle(g, wear)
        return Outline(middle - sag, bottom, g["half"] * wide, g["centre"], power, -sag)
    if wear == "mouth_only":  # a small patch over the mouth, below the nose, above the chin
        top = g["nose"] + 0.35 * (g["mouth"] - g["nose"])
        bottom = g["mouth"] + 0.55 * (g["chin"] - g["mouth"])
        return Outline(top, bottom, g["half"] * 0.72, g["centre"], power, 0.0)
    if wear == "one_ear":  # hanging from one ear: shifted aside and tilted (see ONE_EAR_TILT), part of the face bare
        return Outline(0.6 * g["nose"], g["chin"] + 0.1, g["half"] * 0.9, g["centre"], power, peak)
    if wear == "loose":  # sides where a correct fit's are, the middle hanging off the nose (LOOSE_DROP)
        drop = 0.3 if rng is None else float(rng.uniform(*LOOSE_DROP))
        sides = FIXED_CORRECT_TOP * g["nose"]
        middle = g["nose"] + drop * (g["mouth"] - g["nose"])
        return Outline(sides, g["chin"] + 0.15, g["half"], g["centre"], power, sides - middle)
    raise ValueError(f"unknown wear {wear!r}; choose one of {', '.join(WEARS)}")


def _pulled_down_middle(g: dict[str, float], wear: str) -> tuple[float, float, float]:
    """(top edge's middle, bottom, width share) of a mask pulled down: under the nose (nostrils and tip show, mouth
    covered), to the chin (nose and mouth show), or right down on the neck (the whole face shows; still over the chin
    tip, so tight crops show it)."""
    if wear == "nose_exposed":
        return g["nose"] + 0.3 * (g["mouth"] - g["nose"]), g["chin"] + 0.12, 0.95
    if wear == "chin":
        return g["mouth"] + 0.35 * (g["chin"] - g["mouth"]), g["chin"] + 0.2, 0.85
    top = g["mouth"] + 0.65 * (g["chin"] - g["mouth"])
    return top, top + 0.9 * (g["chin"] - g["nose"]), 0.8


def fill_polygon(shape: tuple[int, int], polygon_xy: np.ndarray) -> np.ndarray:
    """Anti-aliased polygon coverage in [0, 1] (sub-pixel vertices through cv2's fixed-point shift)."""
    canvas = np.zeros(shape, np.uint8)
    pts = np.round(polygon_xy * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def mask_texture(uv: np.ndarray, outline: Outline, style: MaskStyle, rng: np.random.Generator) -> np.ndarray:
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
    elif style.shape == "n95":
        light *= 1.0 - 0.18 * np.clip(rel_u, -1, 1) ** 2 - 0.1 * np.clip(rel_v - 0.5, -0.5, 0.5) ** 2  # the cup
        light -= 0.1 * np.exp(-(((rel_v - 0.12) / 0.02) ** 2))  # the nose-clip ridge
        if style.valve:
            d = np.hypot(rel_u - 0.42, (rel_v - 0.58) * 1.3)
            color[d < 0.16] = (np.asarray(style.color, np.float32) * 0.7)[None]
            light -= 0.2 * np.exp(-(((d - 0.16) / 0.015) ** 2))
    elif style.shape == "clear":
        light += 0.35 * np.exp(-(((rel_u + 0.35) / 0.08) ** 2)) * (rel_v > 0.15)  # a specular streak
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
    if style.wrinkle > 0:  # creases: a smooth random field in face coordinates, so it scales with the face
        coarse = rng.normal(0, 1, (6, 6)).astype(np.float32)
        field = cv2.resize(coarse, (u.shape[1], u.shape[0]), interpolation=cv2.INTER_CUBIC)
        light *= 1.0 + style.wrinkle * np.tanh(field)
    if style.grain > 0:
        light += rng.normal(0, style.grain, u.shape).astype(np.float32)
    return color * light[..., None]


def render_mask(
    image: np.ndarray,
    landmarks: np.ndarray,
    box,
    wear: str = "correct",
    style: MaskStyle | None = None,
    rng: np.random.Generator | None = None,
) -> Rendered:
    """`image` (HxWx3 uint8 RGB) with a mask drawn on the face given by its landmarks (5x2) and box (x1,y1,x2,y2).
    Without `rng`, the same image every call: the fixed fit of `mask_outline` (not a draw from `CORRECT_TOP`, so
    fixtures do not move when the range of drawn fits does) and seed-0 texture and shading."""
    fit_rng = rng
    rng = rng if rng is not None else np.random.default_rng(0)
    style = style or random_style(rng)
    frame, geometry = face_geometry(landmarks, box)
    outline = mask_outline(geometry, wear, style.shape, fit_rng)
    height, width = image.shape[:2]
    uv_polygon = rough_edge(outline.polygon(), outline, style.edge_jitter, rng)
    if wear == "one_ear":
        uv_polygon = _hang_from_one_ear(uv_polygon, outline, rng)
    polygon = frame.to_image(uv_polygon)
    alpha = fill_polygon((height, width), polygon)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, 0.012 * frame.unit))  # soft edge, like fabric against skin
    image = _shadow_around(image, alpha, frame.unit, float(rng.uniform(0.08, 0.25)))

    x0, y0 = np.floor(polygon.min(0) - 4).astype(int).clip(0)
    x1, y1 = np.ceil(polygon.max(0) + 4).astype(int)
    x1, y1 = min(x1, width), min(y1, height)
    out = image.astype(np.float32)
    if x1 > x0 and y1 > y0:
        ys, xs = np.mgrid[y0:y1, x0:x1]
        uv = frame.to_face(np.stack([xs, ys], -1).astype(np.float64))
        texture = mask_texture(uv, outline, style, rng)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        lit = cv2.GaussianBlur(gray, (0, 0), max(1.0, 0.25 * frame.unit))[y0:y1, x0:x1]
        a = alpha[y0:y1, x0:x1]
        mean_lit = float((lit * a).sum() / max(a.sum(), 1e-6)) or 1.0
        shade = np.clip(1 + 0.8 * (lit / mean_lit - 1), 0.55, 1.35)  # the face's own light falls on the mask
        painted = np.clip(texture * shade[..., None], 0, 255)
        if style.shape == "clear":  # clear plastic: the face shows through, lightened, with the streak on top
            a = a * float(rng.uniform(0.3, 0.5))
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


def rough_edge(polygon: np.ndarray, outline: Outline, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Let the edge wander from the ideal curve by a smooth random radial offset (fabric is never a perfect curve)."""
    if amount <= 0:
        return polygon
    n = len(polygon)
    coarse = rng.normal(0, 1, 9)  # a few bumps along the whole outline, interpolated smoothly
    noise = np.interp(np.linspace(0, 8, n), np.arange(9), coarse)
    centre = np.array([outline.centre, (outline.top + outline.bottom) / 2])
    direction = polygon - centre
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-6)
    weight = np.ones(n)
    weight[: n // 2] = 0.3  # the top edge is held by the nose clip: it wanders least, and never up to the eyes
    return polygon + direction * (amount * weight * noise)[:, None]


ONE_EAR_TILT = (30.0, 50.0)  # degrees a mask hanging from one ear turns about that ear


def _hang_from_one_ear(polygon: np.ndarray, outline: Outline, rng: np.random.Generator) -> np.ndarray:
    """Turn the mask about the ear it still hangs from and let it drop, baring the other side of the face."""
    side = 1 if rng.random() < 0.5 else -1
    pivot = np.array([outline.centre + side * outline.half_width, outline.top + 0.2])
    angle = np.deg2rad(-side * rng.uniform(*ONE_EAR_TILT))  # the free side swings down
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return (polygon - pivot) @ rot.T + pivot + np.array([side * 0.35, 0.1])  # dangling over the jaw


def _shadow_around(image: np.ndarray, alpha: np.ndarray, unit: float, strength: float) -> np.ndarray:
    """A soft contact shadow on the skin just outside the mask, as the fabric stands off the face."""
    spread = cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.08 * unit))
    band = np.clip(spread - alpha, 0, 1)
    return np.clip(image.astype(np.float32) * (1 - strength * band[..., None]), 0, 255).astype(np.uint8)
