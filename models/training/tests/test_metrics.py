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
