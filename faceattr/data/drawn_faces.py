"""Procedurally drawn faces in the competition layout, for the demo and the tests.

What is drawn depends on the labels, so a model can learn them: a mask over nose and mouth (worn), over the
mouth and chin only (worn incorrectly) or none; long hair for women, short for men; hair that greys with age
and wrinkles that deepen with it. It is a smoke-test dataset, not a benchmark.
"""

from __future__ import annotations

import csv
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from faceattr.atomic import atomic_path
from faceattr.labels import MASK_FILE_STEMS

SKIN_TONES = [(241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172)]
MASK_COLORS = [(235, 235, 240), (70, 110, 190), (30, 30, 35), (200, 215, 230), (120, 160, 140)]
RACES = ("Asian", "White", "Black", "Others")


@dataclass
class Person:
    person_id: str
    gender: int  # 0 male, 1 female
    age: int
    race: str

    @property
    def folder(self) -> str:
        return f"{self.person_id}_{'female' if self.gender else 'male'}_{self.race}_{self.age}"


def _hair_color(age: int, rng: np.random.Generator) -> tuple[int, int, int]:
    if age < 30:
        base = rng.choice([20, 45, 70])
        return (int(base + 20), int(base + 10), int(base))
    if age < 60:
        grey = 100 + int(rng.integers(0, 30))
        return (grey, grey - 5, grey - 10)
    white = 200 + int(rng.integers(0, 40))
    return (white, white, white)


def draw_face(person: Person, mask: int, rng: np.random.Generator, size: tuple[int, int] = (96, 128)) -> Image.Image:
    """One photo of `person` (width, height = size) with mask state `mask` (0 worn, 1 incorrect, 2 none)."""
    w, h = size
    bg = tuple(int(v) for v in rng.integers(120, 230, size=3))
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    face_rng = np.random.default_rng(zlib.crc32(person.person_id.encode()))
    skin = SKIN_TONES[int(face_rng.integers(len(SKIN_TONES)))]
    hair = _hair_color(person.age, face_rng)
    cx = w / 2 + rng.normal(0, w * 0.03)
    cy = h * 0.52 + rng.normal(0, h * 0.02)
    fw, fh = w * 0.30 * rng.uniform(0.95, 1.05), h * 0.30 * rng.uniform(0.95, 1.05)
    if person.gender == 1:  # long hair behind the face, down to the shoulders
        d.rectangle([cx - fw * 1.25, cy - fh * 0.9, cx + fw * 1.25, cy + fh * 1.5], fill=hair)
    d.rectangle([cx - fw * 0.45, cy + fh * 0.8, cx + fw * 0.45, h], fill=skin)  # neck
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin)
    cap = fh * (0.55 if person.gender == 1 else 0.35)
    d.chord([cx - fw * 1.05, cy - fh * 1.12, cx + fw * 1.05, cy - fh + cap * 2], 180, 360, fill=hair)
    eye_y, eye_dx, eye_r = cy - fh * 0.2, fw * 0.42, max(2.0, fw * 0.12)
    for sx in (-1, 1):
        d.ellipse(
            [cx + sx * eye_dx - eye_r, eye_y - eye_r * 0.7, cx + sx * eye_dx + eye_r, eye_y + eye_r * 0.7],
            fill=(255, 255, 255),
        )
        d.ellipse(
            [cx + sx * eye_dx - eye_r * 0.5, eye_y - eye_r * 0.5, cx + sx * eye_dx + eye_r * 0.5, eye_y + eye_r * 0.5],
            fill=(40, 30, 20),
        )
    wrinkles = 0 if person.age < 30 else (1 if person.age < 45 else (2 if person.age < 60 else 4))
    line = tuple(max(0, c - 70) for c in skin)
    for k in range(wrinkles):  # forehead lines
        y = cy - fh * (0.55 + 0.08 * k)
        d.line([cx - fw * 0.45, y, cx + fw * 0.45, y], fill=line, width=1)
    nose_y = cy + fh * 0.15
    d.polygon([(cx, eye_y + fh * 0.05), (cx - fw * 0.12, nose_y), (cx + fw * 0.12, nose_y)], fill=line)
    mouth_y = cy + fh * 0.5
    d.line([cx - fw * 0.3, mouth_y, cx + fw * 0.3, mouth_y], fill=(170, 40, 50), width=max(2, int(fh * 0.06)))
    if mask in (0, 1):
        color = MASK_COLORS[int(rng.integers(len(MASK_COLORS)))]
        top = eye_y + fh * 0.15 if mask == 0 else nose_y + fh * 0.18  # incorrect: nose left uncovered
        d.polygon(
            [
                (cx - fw * 0.98, top),
                (cx + fw * 0.98, top),
                (cx + fw * 0.75, cy + fh * 0.92),
                (cx, cy + fh * 1.08),
                (cx - fw * 0.75, cy + fh * 0.92),
            ],
            fill=color,
        )
        for sx in (-1, 1):  # ear loops
            d.line([cx + sx * fw * 0.98, top, cx + sx * fw * 1.05, eye_y], fill=color, width=1)
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)
    arr += rng.normal(0, 6, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def random_people(n: int, rng: np.random.Generator, start_id: int = 1) -> list[Person]:
    """People with a balanced spread of gender and of the three age bins."""
    people = []
    for i in range(n):
        age_bin = i % 3
        age = int(rng.integers(*[(18, 30), (30, 58), (60, 80)][age_bin]))
        people.append(Person(f"{start_id + i:06d}", int(rng.integers(2)), age, RACES[int(rng.integers(len(RACES)))]))
    return people


def make_competition_dataset(
    root: str | Path, persons: int = 60, eval_persons: int = 6, seed: int = 0, size: tuple[int, int] = (96, 128)
) -> Path:
    """Write `root/train/images/<id>_<gender>_<race>_<age>/*.jpg` and `root/eval/{info.csv,images/}`."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    images = root / "train" / "images"
    for person in random_people(persons, rng):
        folder = images / person.folder
        folder.mkdir(parents=True, exist_ok=True)
        for stem, mask in MASK_FILE_STEMS.items():
            draw_face(person, mask, rng, size).save(folder / f"{stem}.jpg", quality=92)
    eval_images = root / "eval" / "images"
    eval_images.mkdir(parents=True, exist_ok=True)
    rows = []
    for person in random_people(eval_persons, rng, start_id=900000):
        for stem, mask in MASK_FILE_STEMS.items():
            name = f"{person.person_id}_{stem}.jpg"
            draw_face(person, mask, rng, size).save(eval_images / name, quality=92)
            rows.append({"ImageID": name, "ans": ""})
    with atomic_path(root / "eval" / "info.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["ImageID", "ans"])
        writer.writeheader()
        writer.writerows(rows)
    return root
