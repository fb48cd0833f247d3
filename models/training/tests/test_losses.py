import math

import pytest

torch = pytest.importorskip("torch")

from cistrack_training.losses import alpha_schedule, binary_kl, distillation_loss  # noqa: E402

pytestmark = pytest.mark.torch


def test_alpha_schedule_endpoints():
    assert alpha_schedule(0.0) == pytest.approx(0.1)
    assert alpha_schedule(1.0) == pytest.approx(1.0)
    assert alpha_schedule(0.5) == pytest.approx(0.55)
    assert alpha_schedule(-1.0) == pytest.approx(0.1)
    assert alpha_schedule(2.0) == pytest.approx(1.0)


def test_distillation_loss_by_hand():
    # student logit 0 -> q = 0.5; teacher logit 4 ln 3 at T = 4 -> p = 0.75
    s = torch.tensor([0.0])
    t = torch.tensor([4.0 * math.log(3.0)])
    y = torch.tensor([1.0])
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    total, bce, kl_term = distillation_loss(s, t, y, alpha=0.25, temperature=4.0)
    assert bce.item() == pytest.approx(math.log(2.0), rel=1e-6)
    assert kl_term.item() == pytest.approx(kl, rel=1e-5)
    assert total.item() == pytest.approx(0.25 * math.log(2.0) + 0.75 * 16 * kl, rel=1e-5)


def test_kl_zero_for_equal_logits_and_nonnegative():
    z = torch.linspace(-20, 20, 11)
    assert binary_kl(z, z, 4.0).item() == pytest.approx(0.0, abs=1e-7)
    assert binary_kl(z, -z, 4.0).item() > 0
