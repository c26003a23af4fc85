"""`faceattr prepare` (and the demo): dataset roots of one layout -> one manifest, its person-level split, the
competition's eval manifest and the data checks. Every input is read and checked before the first output is
written, so a failure leaves nothing half-done."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from faceattr.atomic import refuse_other_format, refuse_to_replace, write_csv
from faceattr.data.checks import CheckReport, check_manifest
from faceattr.data.dedupe import drop_duplicate_images
from faceattr.data.manifest import MANIFEST_SUFFIXES, write_manifest
from faceattr.data.sources import READERS, read_competition_eval
from faceattr.data.sources.boxes import BOX_COLUMNS
from faceattr.data.sources.imdb_wiki import FilterReport, ImdbWikiFilters
from faceattr.data.split import folds_path, make_folds, save_folds, saved_folds
from faceattr.errors import FaceAttrError, ManifestError
from faceattr.labels import DEFAULT_OLD_THRESHOLD

# the layouts `prepare` reads: the source registry's readers, less the competition's unlabelled eval half
SOURCES = tuple(name for name in READERS if name != "competition-eval")


@dataclass
class PrepareOptions:
    """What `faceattr prepare`'s options set; each reader takes the ones of its own layout."""

    folds: int = 5
    split_seed: int = 42
    old_threshold: int = DEFAULT_OLD_THRESHOLD
    skip_bad_names: bool = False  # utkface
    skip_bad_folders: bool = False  # competition
    corrections: Path | None = None
    imdb_filters: ImdbWikiFilters = field(default_factory=ImdbWikiFilters)
    classes: dict[str, int] | None = None  # folder: class folder -> mask label
    drop_duplicates: bool | None = None  # None: on, except for competition data (its checks report them)
    overwrite: bool = False  # replace an existing manifest at --out


@dataclass
class Prepared:
    """What was written and what was found on the way, for the caller to report."""

    frame: pd.DataFrame
    manifest: Path
    split_file: Path
    checks: CheckReport
    problems: list[str]  # folders left out (competition --skip-bad-folders)
    copies_dropped: int = 0
    conflicts_dropped: int = 0
    filter_report: FilterReport | None = None  # imdb-wiki
    corrections_log: pd.DataFrame | None = None
    corrections_file: Path | None = None
    split_kept_from: Path | None = None  # the input manifest's own split, kept (person_folds)
    eval_manifest: Path | None = None
    eval_images: int = 0


def read_sources(
    source: str, roots: list[Path], options: PrepareOptions
) -> tuple[pd.DataFrame, list[str], FilterReport]:
    """All roots through the source's reader, joined (each file its own person for per-file layouts)."""
    if source not in SOURCES:
        raise FaceAttrError(f"unknown source '{source}'; use one of {', '.join(SOURCES)}")
    kwargs: dict = {"old_threshold": options.old_threshold}
    report, problems = FilterReport(), []
    if source == "utkface":
        kwargs["skip_bad_names"] = options.skip_bad_names
    if source == "imdb-wiki":
        kwargs.update(filters=options.imdb_filters, report=report)
    if source == "competition":
        kwargs.update(skip_bad_folders=options.skip_bad_folders, problems=problems)
    if source in ("folder", "boxes", "voc", "yolo") and options.classes:
        kwargs["classes"] = options.classes
    frames = [READERS[source](root, **kwargs) for root in roots]
    if len(roots) > 1:
        frames = [f.assign(source_root=str(root)) for f, root in zip(frames, roots, strict=True)]
        # joined manifests never share a person by accident: each id gets its file's stem (one manifest alone
        # keeps its ids, so corrections and predictions made on it still name its people)
        if source == "manifest":
            frames = [
                f.assign(person_id=Path(r).stem + ":" + f["person_id"].astype(str))
                for f, r in zip(frames, roots, strict=True)
            ]
    df = pd.concat(frames, ignore_index=True)
    if df["person_id"].duplicated().any() and source in ("utkface", "folder") and len(roots) > 1:
        # one file, one person: the same file name under two roots is still two people
        df["person_id"] = [
            f"{i}:{p}" for i, p in zip(df.groupby("source_root", sort=False).ngroup(), df["person_id"], strict=True)
        ]
    return df, problems, report


def person_folds(
    source: str, roots: list[Path], df: pd.DataFrame, options: PrepareOptions
) -> tuple[pd.DataFrame, Path | None]:
    """New person-level folds; but one manifest read again (e.g. with --corrections) keeps the split saved beside
    it, for the same folds and seed, where that split holds every person: a corrected label must not move its
    person into or out of the held-out fold, or the corrected and original models are scored on other people.
    Returns the split and the file it was kept from (None when made anew)."""
    if source == "manifest" and len(roots) == 1:
        saved = saved_folds(roots[0], options.folds, options.split_seed)
        people = set(df["person_id"].astype(str))
        if saved is not None and people <= set(saved["person_id"]):
            kept = saved[saved["person_id"].isin(people)].reset_index(drop=True)
            return kept, folds_path(roots[0], options.folds, options.split_seed)
    return make_folds(df, options.folds, options.split_seed), None


def prepare(source: str, roots: list[Path], out: Path, options: PrepareOptions | None = None) -> Prepared:
    """Read, deduplicate, correct and split; then write the manifest, split, corrections log, eval manifest."""
    options = options or PrepareOptions()
    has_eval = source == "competition" and (Path(roots[0]) / "eval" / "info.csv").is_file()
    eval_manifest = out.with_name(out.stem + ".eval" + out.suffix) if has_eval else None
    corrections_file = out.with_name(out.name + ".corrections.csv") if options.corrections is not None else None
    outputs = [path for path in (out, eval_manifest, corrections_file) if path is not None]
    refuse_to_replace(outputs, options.overwrite, roots)  # before reading anything (an input, a folder, a file there)
    refuse_other_format(out, MANIFEST_SUFFIXES)
    df, problems, report = read_sources(source, roots, options)
    copies = conflicts = 0
    # several faces per photo (boxes, voc, yolo) share one photo file: not duplicates
    per_face = source in ("boxes", "voc", "yolo", "manifest")  # a manifest may hold boxed faces
    if options.drop_duplicates if options.drop_duplicates is not None else source != "competition" and not per_face:
        df, dups = drop_duplicate_images(df)
        copies, conflicts = len(dups.copies_dropped), len(dups.conflicts_dropped)
    if source == "manifest" and len(roots) > 1 and options.drop_duplicates is not False:  # each face once, where
        # the manifests overlap (or one is given twice)
        again = df.duplicated(["path", *(c for c in BOX_COLUMNS if c in df)])
        df, copies = df[~again].reset_index(drop=True), copies + int(again.sum())
    log = None
    if options.corrections is not None:
        from faceattr.data.corrections import apply_corrections

        df, log = apply_corrections(df, options.corrections, options.old_threshold)
    eval_df = read_competition_eval(roots[0]) if has_eval else None
    if conflicts and df["person_id"].nunique() < options.folds:
        left = df["person_id"].nunique()
        first = ", ".join(dups.conflicts_dropped[0][:2])
        raise ManifestError(
            f"{conflicts} group(s) of identical images with different labels were all dropped (e.g. {first}), "
            f"leaving {left} person(s) for {options.folds} folds: fix those labels, or keep every copy with "
            "--no-drop-duplicates"
        )
    split, split_kept_from = person_folds(source, roots, df, options)
    # inputs all read and checked: now the outputs
    write_manifest(df, out)
    if log is not None:
        write_csv(log, corrections_file)
    split_file = save_folds(split, out, options.folds, options.split_seed)
    if eval_df is not None:
        write_manifest(eval_df, eval_manifest)
    fold_of = dict(zip(split["person_id"], split["fold"], strict=True))
    return Prepared(
        frame=df,
        manifest=out,
        split_file=split_file,
        checks=check_manifest(df, df["person_id"].map(fold_of)),
        problems=problems,
        copies_dropped=copies,
        conflicts_dropped=conflicts,
        filter_report=report if source == "imdb-wiki" else None,
        corrections_log=log,
        corrections_file=corrections_file,
        split_kept_from=split_kept_from,
        eval_manifest=eval_manifest,
        eval_images=len(eval_df) if eval_df is not None else 0,
    )
