"""What is *not* a mask over the lower face (a hand over the mouth, a scarf at the chin), drawn with the masks'
face geometry, so a model learns that covering the mouth is not wearing a mask: the face stays "not worn"."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from faceattr.synth.masks import (
    FaceFrame,
    Outline,
    Rendered,
    face_geometry,
    fill_polygon,
    mask_texture,
    random_style,
    rough_edge,
)

OCCLUDERS = ("hand", "scarf")


def skin_colour(image: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """The median colour of both cheeks (below the eyes, beside the nose), for drawing a hand of that skin."""
    pts = frame.to_image(np.array([[-0.45, 0.55], [0.45, 0.55]])).round().astype(int)
    h, w = image.shape[:2]
    r = max(1, round(0.12 * frame.unit))
    patches = [
        image[max(0, y - r) : min(h, y + r), max(0, x - r) : min(w, x + r)].reshape(-1, 3)
        for x, y in pts
        if 0 <= x < w and 0 <= y < h
    ]
    pixels = np.concatenate(patches) if patches else image.reshape(-1, 3)
    return np.median(pixels, axis=0).astype(np.float32)


def render_occluder(
    image: np.ndarray, landmarks: np.ndarray, box, kind: str = "hand", rng: np.random.Generator | None = None
) -> Rendered:
    """Something over the lower face that is not a mask (`OCCLUDERS`): the face stays "not worn".

    hand: a palm of the face's own skin colour, with fingers, over the mouth and chin (users report hands over the
    mouth called "mask"); scarf: a cloth band around the neck reaching up to the chin, under the mouth."""
    rng = rng if rng is not None else np.random.default_rng(0)
    frame, g = face_geometry(landmarks, box)
    height, width = image.shape[:2]
    if kind == "hand":
        cx, cy = g["centre"] + rng.uniform(-0.25, 0.25), g["mouth"] + rng.uniform(0.0, 0.35)
        t = np.linspace(0, 2 * np.pi, 64)
        palm = np.stack([cx + 0.75 * np.cos(t), cy + 0.6 * np.sin(t)], 1)
        alpha = fill_polygon((height, width), frame.to_image(palm))
        tilt = rng.uniform(-0.5, 0.5)
        for k in range(4):  # fingers reaching up and across from the palm
            u0 = cx - 0.5 + 0.33 * k
            tip = np.array([u0 + tilt, cy - 0.9 - 0.15 * (k in (1, 2))])
            base = np.array([u0, cy - 0.2])
            p0, p1 = (tuple(round(c * 16) for c in frame.to_image(p)) for p in (base, tip))
            layer = np.zeros((height, width), np.uint8)
            cv2.line(layer, p0, p1, 255, max(1, round(0.26 * frame.unit)), lineType=cv2.LINE_AA, shift=4)
            alpha = np.maximum(alpha, layer.astype(np.float32) / 255.0)
        colour = skin_colour(image, frame) * rng.uniform(0.85, 1.1)
        texture = np.broadcast_to(np.clip(colour, 0, 255), (*alpha.shape, 3)).astype(np.float32)
    elif kind == "scarf":
        top = g["chin"] - rng.uniform(0.15, 0.4)  # up over the chin, still below the mouth
        band = np.array(
            [
                [g["centre"] - 2.2, top],
                [g["centre"] + 2.2, top + rng.uniform(-0.2, 0.2)],
                [g["centre"] + 2.4, top + 2.5],
                [g["centre"] - 2.4, top + 2.5],
            ]
        )
        alpha = fill_polygon(
            (height, width),
            frame.to_image(rough_edge(band, Outline(top, top + 2.5, 2.2, g["centre"], 2, 0), 0.04, rng)),
        )
        style = random_style(rng)
        ys, xs = np.mgrid[0:height, 0:width]
        uv = frame.to_face(np.stack([xs, ys], -1).astype(np.float64))
        texture = mask_texture(
            uv, Outline(top, top + 2.5, 2.2, g["centre"], 2.0, 0.0), replace(style, shape="cloth"), rng
        )
    else:
        raise ValueError(f"unknown occluder {kind!r}; choose one of {', '.join(OCCLUDERS)}")
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.5, 0.02 * frame.unit))
    lit = cv2.GaussianBlur(
        cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), max(1.0, 0.3 * frame.unit)
    )
    shade = np.clip(lit / max(float(lit.mean()), 1.0), 0.6, 1.3)[..., None]
    out = image.astype(np.float32) * (1 - alpha[..., None]) + np.clip(texture * shade, 0, 255) * alpha[..., None]
    return Rendered(np.clip(out, 0, 255).astype(np.uint8), alpha)
