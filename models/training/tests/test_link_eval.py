"""Link evaluation metrics (torch-free)."""

import numpy as np
import pytest

from cistrack_training.link_eval import abc_scores, gene_test_fold, pearson, precision_at_recall


def test_precision_at_recall_by_hand():
    y = np.array([1, 0, 1, 0, 1, 0, 0, 1], dtype=bool)
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    # recall 0.75 is first reached at the 5th pair (3 of 4 positives): precision 3/5
    assert precision_at_recall(y, s, 0.7) == pytest.approx(3 / 5)
    assert precision_at_recall(y, s, 0.25) == pytest.approx(1.0)
    assert precision_at_recall(y, s, 1.0) == pytest.approx(4 / 8)


def test_precision_at_recall_ties_are_called_together():
    y = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    s = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # two of three positives sit in the tie at 0: reaching 70 % recall calls all six pairs
    assert precision_at_recall(y, s, 0.7) == pytest.approx(0.5)


def test_pearson():
    x = np.arange(10.0)
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert np.isnan(pearson(x, np.ones(10)))


def test_abc_scores_normalise_per_gene():
    data = {
        "candidate_index": np.array([[0, 1, -1], [-1, -1, -1], [2, -1, -1]]),
        "track_means": np.array([2.0, 1.0]),
        "cand_accessibility": np.array([2.0, 8.0, 4.0]),
        "cand_h3k27ac": np.array([1.0, 1.0, 0.0]),
        "candidate_contact": np.array([[1.0, 0.5, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
    }
    abc = abc_scores(data)
    # activities sqrt(1*1)=1 and sqrt(4*1)=2; numerators 1 and 1
    np.testing.assert_allclose(abc[0], [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(abc[1], 0.0)
    np.testing.assert_array_equal(abc[2], 0.0)  # zero activity: no score, no NaN


def test_gene_test_fold():
    split = np.array([[2, 0, 1], [0, 0, 2], [0, 1, 0]], dtype=np.int8)
    assert list(gene_test_fold({"split": split})) == [1, 3, 0]
