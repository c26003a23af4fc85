"""predict's journal: each batch's rows noted as they are predicted, so a run cut short (Ctrl-C, a killed job, a
full disk) goes on from the photos it finished instead of starting a folder of thousands over."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from faceattr.atomic import append_table, write_csv
from faceattr.data.images import readable_path

PHOTO_ROWS = "photo_rows"  # the journal's own column: how many rows its photo has (a photo cut short has fewer)


def file_identity(path: str | Path) -> dict:
    """A model file as the journal keys it: where it is, how big, when written (a retrained checkpoint differs);
    a peer's name, which is no file, as itself."""
    p = Path(path)
    if not p.is_file():
        return {"name": str(path)}
    stat = p.stat()
    return {"path": str(p.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class PredictionJournal:
    """`<out>.<settings>.partial.csv`: the rows of every photo done so far, written batch by batch. The settings
    (models, their files, views, face settings) are in the name, so a run with other settings never takes these
    rows; the file goes once `out` holds them all."""

    def __init__(self, out: Path, settings: dict) -> None:
        blob = json.dumps(settings, sort_keys=True, default=str)
        key = hashlib.sha1(blob.encode()).hexdigest()[:8]
        self.path = out.with_name(f"{out.name}.{key}.partial.csv")
        self._columns: list[str] | None = None  # the file's header, once known

    def done(self) -> pd.DataFrame:
        """The rows of the photos finished whole."""
        return self._whole()[0].drop(columns=PHOTO_ROWS, errors="ignore")

    def keep_whole(self) -> pd.DataFrame:
        """`done()`, after taking out of the file the rows of a photo a kill cut short (it is predicted again, and
        its new rows must not join the old ones)."""
        whole, cut = self._whole()
        if cut:
            write_csv(whole, self.path)
        return whole.drop(columns=PHOTO_ROWS, errors="ignore")

    def _whole(self) -> tuple[pd.DataFrame, bool]:
        """The photos whose every row is there (their number, each row's `photo_rows`), and whether any was cut."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return pd.DataFrame(), False
        rows = pd.read_csv(self.path, keep_default_na=False, na_values=[""], dtype={"path": str})  # as written
        if PHOTO_ROWS not in rows or "path" not in rows:
            return pd.DataFrame(), False
        counts = rows.groupby("path")["path"].transform("size")
        whole = (rows[PHOTO_ROWS] == counts).groupby(rows["path"]).transform("all")
        return rows[whole].reset_index(drop=True), not whole.all()

    def append(self, table: pd.DataFrame) -> None:
        """Note one batch's rows (each of its photos whole), flushed to disk before the next batch starts."""
        if table.empty:
            return
        table = table.assign(**{PHOTO_ROWS: table.groupby("path")["path"].transform("size")})
        if self._columns is None and self.path.is_file() and self.path.stat().st_size:  # read once, not per batch
            self._columns = list(pd.read_csv(self.path, nrows=0).columns)
        if self._columns is not None:  # the columns in the journal's order
            table = table.reindex(columns=self._columns)
        append_table(table, self.path)
        self._columns = list(table.columns)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def photos_left(photos: list[str], done: pd.DataFrame) -> list[str]:
    """The photos the journal has no whole rows for, in their order."""
    noted = set(done["path"]) if len(done) else set()
    return [p for p in photos if readable_path(p) not in noted]


def in_order(table: pd.DataFrame, photos: Iterable[str]) -> pd.DataFrame:
    """`table`'s rows in the order of `photos` (a resumed run's rows come after the ones it found done), each
    photo's own rows kept in theirs."""
    if table.empty:
        return table
    rank = {readable_path(p): k for k, p in enumerate(photos)}
    order = table["path"].map(rank).fillna(len(rank))
    return table.iloc[order.argsort(kind="stable")].reset_index(drop=True)
