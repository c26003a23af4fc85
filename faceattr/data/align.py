"""Face alignment by the five landmarks: the similarity transform (rotation, one scale, shift) that puts a face's
eyes, nose tip and mouth corners where a canonical template has them, as dlib's face chips and ArcFace's crops do.

Margin framing (faces.margins) keeps a face upright only as far as the photo does; aligned chips take the roll out
and put the eyes at one height and distance, so the network sees faces the same way whatever the camera did.
`padding` widens the template's frame around the face (0 = ArcFace's tight 112 px chip; UTKFace's crops show
about 0.25 more on each side: hair, ears, chin), since hair and face shape carry much of the gender signal.
The `utkface` template is UTKFace's own layout: on its tight crops ArcFace's frame reaches past the photo, so a
model trained on them aligned by ArcFace's sees mostly replicated edge (docs/age-gender.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceattr.config.choices import AlignTemplate
from faceattr.config.schema import FacesConfig

CHIP_SIDE = 192  # aligned chips are made at this side, for training and prediction alike; the transforms then
# resize them to data.image_size
# The five points of each template as shares of its square frame, in the landmark order faceattr keeps (MTCNN's):
# the eyes (image left, then right), the nose tip, the mouth corners (image left, then right).
TEMPLATES = {
    # ArcFace's 112x112 template (insightface) / 112
    AlignTemplate.ARCFACE: np.array(
        [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
    )
    / 112.0,
    # the median of CenterFace's points on 21,369 UTKFace crops (200 px; each point spread by 4-6 px around it),
    # made left-right symmetric: `python -m docs.experiments.aligned_chip_border data/utkface.framed.csv`
    AlignTemplate.UTKFACE: np.array(
        [[0.3057, 0.2977], [0.6942, 0.2977], [0.5, 0.524], [0.3242, 0.6912], [0.6758, 0.6912]]
    ),
}


def template(size: int, padding: float = 0.0, name: str = AlignTemplate.ARCFACE) -> np.ndarray:
    """The five points of template `name` for a `size` px square chip with `padding` (a share of the chip) added on
    each side of its frame."""
    return (TEMPLATES[AlignTemplate(name)] + padding) / (1.0 + 2.0 * padding) * size


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform that maps `source` points onto `target` points in the least-squares sense
    (Umeyama 1991, without reflection)."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    mu_s, mu_t = source.mean(0), target.mean(0)
    s, t = source - mu_s, target - mu_t
    u, d, vt = np.linalg.svd(t.T @ s / len(source))
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign) / s.var(0).sum())
    shift = mu_t - scale * rotation @ mu_s
    return np.hstack([scale * rotation, shift[:, None]])


def align(
    image: np.ndarray,
    points: np.ndarray,
    padding: float,
    size: int = CHIP_SIDE,
    name: str = AlignTemplate.ARCFACE,
) -> np.ndarray:
    """The `size` px chip of `image` whose five `points` (MTCNN's order) sit on template `name`; the photo's edge
    is replicated where the chip reaches past it. A face much larger than the chip is first shrunk by pixel
    area, since warping it down in one bilinear step would alias."""
    points = np.asarray(points, np.float64)
    target = template(size, padding, name)
    scale = float(np.sqrt(abs(np.linalg.det(similarity(points, target)[:, :2]))))
    if scale < 0.5:
        h, w = image.shape[:2]
        small = (max(1, round(w * 2 * scale)), max(1, round(h * 2 * scale)))
        image = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        points = points * [small[0] / w, small[1] / h]
    matrix = similarity(points, target)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """`points` (N, 2) under the 2x3 `matrix`."""
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


@dataclass(frozen=True)
class Alignment:
    """faces.align's chip, as training and prediction both make it: the template and the padding around it."""

    template: str
    padding: float

    @classmethod
    def of(cls, faces: FacesConfig) -> Alignment | None:
        """The alignment a FacesConfig asks for, or None for margin crops."""
        return cls(faces.align_template, faces.align_padding) if faces.align else None

    def __call__(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        return align(image, points, self.padding, name=self.template)
