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
