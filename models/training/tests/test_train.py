import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cistrack_training import encode  # noqa: E402
from cistrack_training.train import lr_at, modality_dropout, one_hot_batch, sigmoid  # noqa: E402

pytestmark = pytest.mark.torch


def test_modality_dropout_never_drops_everything():
    rng = np.random.default_rng(0)
    mask = modality_dropout(20000, 0.5, rng)
    assert mask.dtype == np.float32
    assert np.all(mask.sum(1) >= 1)
    # every non-empty combination occurs
    assert len({tuple(m) for m in mask.astype(int)}) == 7
    # kept with probability 0.5, plus 1/3 of the all-dropped rows (0.5**3) restored
    assert abs(mask.mean() - (0.5 + 0.125 / 3)) < 0.01


def test_lr_schedule():
    assert lr_at(0, 100, 1.0, 10, 0.1) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10, 0.1) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 10, 0.1) == pytest.approx(0.1)


def test_one_hot_batch_matches_reference():
    seqs = np.frombuffer(b"ACGTNacgtR" * 2, dtype=np.uint8).reshape(2, 10)
    out = one_hot_batch(seqs)
    assert out.dtype == np.float32 and out.shape == (2, 4, 10)
    np.testing.assert_array_equal(out[1], encode.one_hot(bytes(seqs[1])))


def test_sigmoid_stable():
    x = np.array([-1000.0, 0.0, 1000.0])
    np.testing.assert_allclose(sigmoid(x), [0.0, 0.5, 1.0])
