import numpy as np
import pytest

from cistrack_training import metrics


def test_auroc_with_ties():
    y = np.array([0, 0, 1, 1])
    assert metrics.auroc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert metrics.auroc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(metrics.auroc(np.ones(3), np.arange(3)))


def test_auprc_by_hand():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    # precision 1 at recall 0.5, precision 2/3 at recall 1
    assert metrics.auprc(y, s) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_f1_and_ece():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1])
    assert metrics.f1_at(y, p, 0.5) == pytest.approx(0.5)
    # bins of width 0.5: [0.4, 0.1] -> |0.5 - 0.25|, [0.9, 0.6] -> |0.5 - 0.75|
    assert metrics.ece(y, p, bins=2) == pytest.approx(0.25)


def test_ece_floor_is_what_a_calibrated_model_scores():
    rng = np.random.default_rng(3)
    p_small = rng.uniform(0.05, 0.95, 400)
    p_large = rng.uniform(0.05, 0.95, 8000)
    small, large = metrics.ece_floor(p_small), metrics.ece_floor(p_large)
    # the binned estimator's bias shrinks like 1/sqrt(n)
    assert 0.03 < small["mean"] < 0.08
    assert large["mean"] < small["mean"] / 3
    assert small["mean"] < small["q95"]
    # a calibrated model's measured ECE lies near its floor; a miscalibrated one far above it
    y = rng.random(400) < p_small
    assert metrics.ece(y, p_small) < small["q95"] + 0.02
    assert metrics.ece(y, np.clip(p_small + 0.2, 0, 1)) > small["q95"] + 0.05
    # all-certain probabilities leave no room for sampling error
    assert metrics.ece_floor(np.array([0.0, 1.0] * 50))["mean"] == 0.0
    # reproducible
    assert metrics.ece_floor(p_small) == small


def test_summary_floor_only_when_asked():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.3, 0.6, 0.2])
    assert "ece_floor" not in metrics.summary(y, p)
    assert metrics.summary(y, p, floor=True)["ece_floor"]["draws"] == 200
