"""Data checks run at prepare time (and by `faceattr check`): the faults that silently spoil a validation score.

- the same image file (by content hash) under two persons, or in two folds: it leaks between train and validation;
- a competition person with other than 7 images;
- labels that disagree with the person folder's name (gender, age) or the file's name (mask).
Each finding says what to fix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from faceattr.data.sources.competition import FOLDER_PATTERN, GENDERS
from faceattr.labels import MASK_FILE_STEMS


@dataclass
class CheckReport:
    duplicates_across_persons: list[list[str]] = field(default_factory=list)
    duplicates_across_folds: list[list[str]] = field(default_factory=list)
    wrong_image_count: dict[str, int] = field(default_factory=dict)
    label_disagreements: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.duplicates_across_persons
            or self.duplicates_across_folds
            or self.wrong_image_count
            or self.label_disagreements
        )

    def lines(self) -> list[str]:
        """Findings as Markdown bullet lines, each with its fix."""
        out = []
        for group in self.duplicates_across_persons:
            out.append(
                f"- duplicate image under different persons: {', '.join(group)} — keep one copy, or give them "
                "the same person_id so they share a fold"
            )
        for group in self.duplicates_across_folds:
            out.append(
                f"- duplicate image in different folds (leaks into validation): {', '.join(group)} — remove "
                "the copies, then delete the saved split to make a new one"
            )
        for person, count in self.wrong_image_count.items():
            out.append(f"- person {person} has {count} image(s), not 7 — add the missing photos or drop the person")
        out += [f"- {finding}" for finding in self.label_disagreements]
        out += [f"- cannot read for hashing: {path}" for path in self.unreadable]
        return out


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def content_hashes(paths) -> tuple[list[str], list[str]]:
    """A content hash per path ('unreadable:<path>' where the file cannot be read, so it matches nothing), and
    the unreadable paths."""
    hashes, unreadable = [], []
    for path in paths:
        try:
            hashes.append(file_hash(path))
        except OSError:
            unreadable.append(str(path))
            hashes.append(f"unreadable:{path}")
    return hashes, unreadable


def folder_label_disagreements(df: pd.DataFrame) -> list[str]:
    """Rows in a `<id>_<gender>_<race>_<age>` folder whose gender or age columns, or whose mask versus the
    file name (mask1..5, incorrect_mask, normal), say otherwise."""
    findings = []
    for row in df.itertuples():
        path = Path(row.path)
        folder = Path(getattr(row, "source_path", None) or row.path).parent.name
        m = FOLDER_PATTERN.match(folder)
        if not m or m["gender"].lower() not in GENDERS:
            continue
        if row.gender >= 0 and row.gender != GENDERS[m["gender"].lower()]:
            findings.append(f"{path}: gender {row.gender} but the folder says {m['gender']} — fix the label")
        if not pd.isna(row.age) and int(row.age) != int(m["age"]):
            findings.append(f"{path}: age {row.age:g} but the folder says {m['age']} — fix the label")
        stem = Path(getattr(row, "source_path", None) or row.path).stem
        if stem in MASK_FILE_STEMS and row.mask >= 0 and row.mask != MASK_FILE_STEMS[stem]:
            findings.append(f"{path}: mask {row.mask} but the file name says {stem} — fix the label or the name")
    return findings


def check_manifest(df: pd.DataFrame, folds: pd.Series | None = None) -> CheckReport:
    """Run every check; `folds` (a fold per row) adds the cross-fold duplicate check."""
    report = CheckReport()
    hashes, report.unreadable = content_hashes(df["path"])
    frame = pd.DataFrame({"path": df["path"].astype(str), "person": df["person_id"].astype(str), "hash": hashes})
    if folds is not None:
        frame["fold"] = folds.to_numpy()
    for _, group in frame[frame.duplicated("hash", keep=False)].groupby("hash"):
        if group["person"].nunique() > 1:
            report.duplicates_across_persons.append(group["path"].tolist())
        if "fold" in group and group["fold"].nunique() > 1:
            report.duplicates_across_folds.append(group["path"].tolist())
    competition = df[df["source"] == "competition"] if "source" in df else df.iloc[:0]
    counts = competition.groupby("person_id").size()
    report.wrong_image_count = {str(p): int(c) for p, c in counts.items() if c != len(MASK_FILE_STEMS)}
    report.label_disagreements = folder_label_disagreements(df)
    return report
