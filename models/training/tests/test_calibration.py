"""Calibration fits (numpy only): temperature recovers a known T, isotonic is PAV, apply matches."""

import numpy as np
import pytest

from cistrack_training import calibration, metrics


def synthetic(n=20000, temperature=2.5, seed=0):
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0.0, 2.0, n)
    y = (rng.random(n) < calibration.sigmoid(true_logit)).astype(np.float64)
    return y, true_logit * temperature  # an over-confident model: logits T times too large


def test_temperature_recovers_the_overconfidence_and_lowers_ece():
    y, logit = synthetic()
    t = calibration.fit_temperature(y, logit)
    assert t == pytest.approx(2.5, rel=0.05)
    before = metrics.ece(y, calibration.sigmoid(logit))
    after = metrics.ece(y, calibration.apply({"method": "temperature", "temperature": t}, logit))
    assert before > 0.05 and after < 0.02


def test_isotonic_is_monotone_and_matches_block_means():
    y = np.array([0, 1, 0, 1, 1, 0, 1, 1], dtype=float)
    z = np.arange(8, dtype=float)
    xs, ps = calibration.fit_isotonic(y, z)
    assert all(a < b for a, b in zip(xs[:-1], xs[1:], strict=True))
    assert all(a <= b for a, b in zip(ps[:-1], ps[1:], strict=True))
    # PAV by hand: [0] [1,0 -> .5] [1,1,0 -> .667] [1,1]; then .5 < .667 < 1 holds
    assert ps == pytest.approx([0.0, 0.5, 2 / 3, 1.0])
    assert xs == pytest.approx([0.0, 1.5, 4.0, 6.5])
    c = calibration.fit(y, z, "isotonic", "toy")
    p = calibration.apply(c, np.array([-5.0, 0.75, 4.0, 99.0]))
    assert p == pytest.approx([0.0, 0.25, 2 / 3, 1.0])


def test_isotonic_lowers_ece_on_a_distorted_model():
    y, logit = synthetic(seed=1)
    distorted = np.sign(logit) * np.abs(logit) ** 0.5  # monotone, badly calibrated
    c = calibration.fit(y, distorted, "isotonic", "toy")
    assert (
        metrics.ece(y, calibration.apply(c, distorted))
        < 0.02
        < metrics.ece(y, calibration.sigmoid(distorted))
    )


def test_errors():
    with pytest.raises(ValueError, match="both classes"):
        calibration.fit_temperature(np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match="expected 'temperature' or 'isotonic'"):
        calibration.fit(np.array([0, 1.0]), np.array([0, 1.0]), "platt", "x")
    with pytest.raises(ValueError, match="one knot"):
        calibration.fit_isotonic(np.array([0, 1, 0, 1.0]), np.array([3, 2, 1, 0.0]))


def two_sets(seed=2):
    """Windows with all modalities (over-confident by 3x) and sequence-only ones (under-confident)."""
    y_all, z_all = synthetic(n=6000, temperature=3.0, seed=seed)
    y_seq, z_seq = synthetic(n=6000, temperature=0.5, seed=seed + 1)
    masks = np.array([[1.0, 1.0, 1.0]] * 6000 + [[1.0, 0.0, 0.0]] * 6000)
    return np.concatenate([y_all, y_seq]), np.concatenate([z_all, z_seq]), masks


def test_by_modalities_fits_each_set_and_beats_one_pooled_map():
    y, z, masks = two_sets()
    c = calibration.fit(y, z, "by_modalities:temperature", "toy", masks)
    assert set(c["sets"]) == {"sequence", "sequence+h3k27ac+accessibility"}
    assert c["sets"]["sequence+h3k27ac+accessibility"]["temperature"] == pytest.approx(3.0, rel=0.1)
    assert c["sets"]["sequence"]["temperature"] == pytest.approx(0.5, rel=0.1)
    pooled = calibration.fit(y, z, "temperature", "toy")
    per_set = calibration.apply(c, z, masks)
    one = calibration.apply(pooled, z)
    for sel in (masks[:, 1] == 1, masks[:, 1] == 0):
        assert metrics.ece(y[sel], per_set[sel]) < 0.03 < metrics.ece(y[sel], one[sel])
    # a set it was not fitted on takes the default (the pooled fit)
    other = calibration.apply(c, z[:5], np.array([[0.0, 1.0, 1.0]] * 5))
    assert other == pytest.approx(calibration.apply(c["default"], z[:5]))
    with pytest.raises(ValueError, match="modality masks"):
        calibration.apply(c, z)
    assert calibration.modality_set(np.array([0.0, 1.0, 0.0])) == "h3k27ac"
    assert calibration.modality_set(np.zeros(3)) == "none"


def test_choose_picks_by_cross_fitted_validation_ece():
    y, z, masks = two_sets(seed=4)
    source = np.where(masks[:, 1] == 1, "signal", "ienhancer")
    best, table = calibration.choose(y, z, masks, source, metrics.ece)
    assert best.startswith("by_modalities:")
    assert set(table) == {"none", *calibration.METHODS}
    assert max(table[best].values()) < 0.03 < max(table["temperature"].values())
    # out-of-fold: no window is calibrated by a map that saw its label
    p = calibration.cross_fitted(y, z, masks, "isotonic")
    assert p.shape == y.shape and np.all((p >= 0) & (p <= 1))
