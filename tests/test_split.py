import pandas as pd

from faceattr.data.split import folds_path, load_or_make_folds, make_folds


def _people(n=60):
    rows = []
    for p in range(n):
        for mask in (0, 0, 0, 0, 0, 1, 2):
            rows.append({"person_id": f"p{p}", "label18": mask * 6 + (p % 2) * 3 + p % 3})
    return pd.DataFrame(rows)


def test_split_keeps_every_person_in_one_fold():
    df = _people()
    folds = make_folds(df, k=5, seed=0)
    assert folds["person_id"].is_unique
    merged = df.merge(folds, on="person_id")
    assert merged.groupby("person_id")["fold"].nunique().eq(1).all()
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]


def test_split_is_stratified_and_seeded():
    df = _people(90)
    a, b = make_folds(df, 3, seed=7), make_folds(df, 3, seed=7)
    assert a.equals(b)
    merged = df.merge(a, on="person_id")
    per_fold = merged.groupby("fold")["label18"].apply(lambda s: (s % 3 == 2).mean())
    assert per_fold.max() - per_fold.min() < 0.1  # old people spread evenly


def test_split_is_saved_next_to_the_manifest_and_reused(tmp_path):
    df = _people(30)
    manifest = tmp_path / "manifest.csv"
    first = load_or_make_folds(df, manifest, 3, 42)
    assert folds_path(manifest, 3, 42).is_file()
    saved = pd.read_csv(folds_path(manifest, 3, 42))
    saved["fold"] = (saved["fold"] + 1) % 3  # a saved split wins over recomputing
    saved.to_csv(folds_path(manifest, 3, 42), index=False)
    assert ((load_or_make_folds(df, manifest, 3, 42) - first) % 3 == 1).all()
