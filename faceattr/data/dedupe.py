"""Byte-identical images, found by content hash and dropped before the split, so no photo sits on both the
training and the held-out side. UTKFace, for one, holds a few photos twice under different names (and labels)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from faceattr.data.checks import content_hashes

LABEL_COLUMNS = ("mask", "gender", "age")


@dataclass
class DuplicateReport:
    """What `drop_duplicate_images` removed: later copies (same labels) and conflicting groups (labels differ)."""

    copies_dropped: list[str] = field(default_factory=list)
    conflicts_dropped: list[list[str]] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return len(self.copies_dropped) + sum(len(g) for g in self.conflicts_dropped)

    def lines(self) -> list[str]:
        out = [f"- duplicate copy dropped (first kept): {p}" for p in self.copies_dropped]
        out += [
            f"- identical images with different labels, all dropped: {', '.join(g)}" for g in self.conflicts_dropped
        ]
        return out


def drop_duplicate_images(df: pd.DataFrame) -> tuple[pd.DataFrame, DuplicateReport]:
    """Keep the first row of each byte-identical group; drop every row of a group whose labels disagree.

    Unreadable files keep their rows (the loader reports them later)."""
    frame = df.assign(_hash=content_hashes(df["path"])[0])
    report = DuplicateReport()
    drop = pd.Series(False, index=frame.index)
    labels = [c for c in LABEL_COLUMNS if c in frame]
    for _, group in frame[frame.duplicated("_hash", keep=False)].groupby("_hash", sort=False):
        if len(group[labels].astype(str).drop_duplicates()) > 1:
            drop[group.index] = True
            report.conflicts_dropped.append(group["path"].astype(str).tolist())
        else:
            drop[group.index[1:]] = True
            report.copies_dropped += group["path"].astype(str).tolist()[1:]
    return frame[~drop].drop(columns="_hash").reset_index(drop=True), report
