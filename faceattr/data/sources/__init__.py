"""One reader per dataset layout; each returns a manifest DataFrame (see faceattr.data.manifest)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from faceattr.data.sources.appa_real import read_appa_real
from faceattr.data.sources.boxes import read_boxes_csv, read_voc, read_yolo
from faceattr.data.sources.competition import read_competition, read_competition_eval
from faceattr.data.sources.csv_table import read_csv_table
from faceattr.data.sources.image_folder import read_image_folder
from faceattr.data.sources.imdb_wiki import read_imdb_wiki
from faceattr.data.sources.manifests import read_manifests
from faceattr.data.sources.utkface import read_utkface

READERS: dict[str, Callable[..., pd.DataFrame]] = {
    "competition": read_competition,
    "competition-eval": read_competition_eval,
    "utkface": read_utkface,
    "csv": read_csv_table,
    "imdb-wiki": read_imdb_wiki,
    "appa-real": read_appa_real,
    "folder": read_image_folder,
    "boxes": read_boxes_csv,
    "voc": read_voc,
    "yolo": read_yolo,
    "manifest": read_manifests,
}

__all__ = [
    "READERS",
    "read_appa_real",
    "read_boxes_csv",
    "read_competition",
    "read_competition_eval",
    "read_csv_table",
    "read_image_folder",
    "read_imdb_wiki",
    "read_manifests",
    "read_utkface",
    "read_voc",
    "read_yolo",
]
