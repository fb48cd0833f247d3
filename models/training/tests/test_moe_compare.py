"""The MoE-vs-dense comparison: paired bootstrap intervals and the run checks."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.torch
moe_compare = pytest.importorskip("cistrack_training.moe_compare")


def test_identical_models_differ_by_nothing():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    delta, lo, hi = moe_compare.paired_bootstrap(y, [p], [p.copy()], resamples=100)
    assert (delta, lo, hi) == (0.0, 0.0, 0.0)


def test_a_better_model_gets_an_interval_above_zero():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    noise = rng.normal(size=(2, 400))
    weak = y + 2.0 * noise[0]
    strong = y + 0.5 * noise[1]
    delta, lo, hi = moe_compare.paired_bootstrap(y, [weak], [strong], resamples=300)
    assert lo > 0 and lo < delta < hi
    # the other way round: below zero, the same size
    back, blo, bhi = moe_compare.paired_bootstrap(y, [strong], [weak], resamples=300)
    assert bhi < 0 and back == pytest.approx(-delta)


def test_one_class_gives_no_interval():
    y = np.ones(20, dtype=int)
    p = np.random.default_rng(4).random(20)
    assert all(np.isnan(moe_compare.paired_bootstrap(y, [p], [p[::-1]], resamples=10)))


def test_the_difference_is_averaged_over_input_draws():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    a = [rng.random(200), rng.random(200)]
    delta, _, _ = moe_compare.paired_bootstrap(y, a, [y + 0.1 * a[0], a[1]], resamples=50)
    from cistrack_training import metrics

    want = ((metrics.auroc(y, y + 0.1 * a[0]) - metrics.auroc(y, a[0])) + 0.0) / 2
    assert delta == pytest.approx(want)


def test_runs_with_different_splits_or_seeds_are_refused(tmp_path):
    for name, seed, split in (("a", 1, {"x": 1}), ("b", 1, {"x": 2}), ("c", 2, {"x": 1})):
        run = tmp_path / name
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"seed": seed}))
        (run / "split.json").write_text(json.dumps(split))
    with pytest.raises(SystemExit, match="different splits"):
        moe_compare.check_comparable(tmp_path / "a", tmp_path / "b")
    with pytest.raises(SystemExit, match="seeds differ"):
        moe_compare.check_comparable(tmp_path / "a", tmp_path / "c")
    with pytest.raises(SystemExit, match="config.json not found"):
        moe_compare.check_comparable(tmp_path / "a", tmp_path / "missing")
    moe_compare.check_comparable(tmp_path / "a", tmp_path / "a")
