"""data.batch_size=auto: the largest batch that fits, by doubling then bisecting real training steps."""

import json

import pytest

from faceattr.errors import ConfigError
from tests.conftest import tiny_overrides


def test_largest_fitting_batch_is_found_by_doubling_then_bisecting():
    from faceattr.training.batch_size import largest_fitting

    tried: list[int] = []

    def fits_under(limit):
        def fits(b):
            tried.append(b)
            return b <= limit

        return fits

    assert largest_fitting(fits_under(100), start=8, cap=512) >= 100 * 7 // 8
    assert largest_fitting(fits_under(100), start=8, cap=512) <= 100
    assert largest_fitting(fits_under(1000), start=8, cap=256) == 256  # capped
    assert largest_fitting(fits_under(5), start=8, cap=256) == 5
    assert largest_fitting(fits_under(0), start=8, cap=256) == 1  # nothing fits: still train, with one image
    tried.clear()
    largest_fitting(fits_under(64), start=8, cap=512)
    assert tried[:5] == [8, 16, 32, 64, 128]


def test_auto_batch_size_trains_and_records_the_size_it_picked(competition_manifest, tmp_path):
    from faceattr.config import load_config
    from faceattr.training import train

    overrides = tiny_overrides(
        competition_manifest, tmp_path, **{"data.batch_size": "auto", "data.max_batch_size": 24, "train.epochs": 1}
    )
    result = train(load_config(None, overrides))
    summary = json.loads((result.run_dir / "train_summary.json").read_text())
    assert summary["batch_size"] == 24  # the tiny network fits far more; the cap decides
    saved = (result.run_dir / "config.yaml").read_text()
    assert "batch_size: 24" in saved  # the run folder records the number, so a rerun is reproducible
    with pytest.raises(ConfigError, match=r"data\.batch_size"):
        load_config(None, ["data.batch_size=big"])
    # a budget no batch can meet on CPU still trains, with one image per step
    tiny_budget = load_config(None, [*overrides, "data.auto_batch_memory_fraction=0.0001"])
    from faceattr.models.module import FaceAttrModule
    from faceattr.training.batch_size import find_batch_size

    assert find_batch_size(tiny_budget, FaceAttrModule.from_config(tiny_budget, load_pretrained=False)) == 1


def test_each_cpu_trial_measures_its_own_peak_memory_not_the_process_lifetime():
    """After one large trial a smaller one must not inherit its peak (ru_maxrss would: a lifetime maximum)."""
    import numpy as np

    from faceattr.training.batch_size import peak_rss_bytes, reset_peak_rss

    if not reset_peak_rss():
        pytest.skip("this kernel offers no resettable peak-RSS (/proc/self/clear_refs)")
    big = np.ones(400 * 2**20 // 8)
    big[::512] = 2.0  # touch every page
    with_big = peak_rss_bytes()
    del big
    assert reset_peak_rss()
    assert peak_rss_bytes() < with_big - 300 * 2**20


def test_on_one_gpu_the_search_is_lightnings_tuner_through_the_data_module(competition_manifest, tmp_path):
    """The GPU route, run here on the CPU (where nothing runs out of memory, so the tuner climbs to the cap):
    Lightning's Tuner.scale_batch_size sets the data module's batch size, capped by data.max_batch_size."""
    from faceattr.config import load_config
    from faceattr.data.datamodule import FaceDataModule
    from faceattr.models.module import FaceAttrModule
    from faceattr.training.batch_size import tune_batch_size_on_gpu
    from faceattr.training.fit import build_trainer, on_one_gpu

    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1}))
    datamodule = FaceDataModule(cfg, cfg.augment.mean or [0.5] * 3, cfg.augment.std or [0.5] * 3, tmp_path)
    datamodule.setup("fit")
    module = FaceAttrModule.from_config(cfg, load_pretrained=False)
    trainer = build_trainer(cfg, tmp_path / "run")
    assert not on_one_gpu(trainer)  # this CPU takes the RSS-budget search instead
    before = {k: v.clone() for k, v in module.state_dict().items()}
    picked = tune_batch_size_on_gpu(trainer, module, datamodule, cap=12, start=4)
    assert picked == 11  # the cap less Lightning's 5 % safety margin
    assert datamodule.batch_size == cfg.data.batch_size == picked
    assert all((module.state_dict()[k] == v).all() for k, v in before.items())  # trials leave the weights as found
