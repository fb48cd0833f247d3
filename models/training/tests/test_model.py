import pytest

torch = pytest.importorskip("torch")

from cistrack_training.config import DEFAULTS  # noqa: E402
from cistrack_training.model import AttLightEnhancer, ModelConfig, example_inputs, parameter_count  # noqa: E402

pytestmark = pytest.mark.torch

TINY = ModelConfig(d_model=32, heads=4, encoder_layers=1, dropout=0.1, stem_channels=16, signal_channels=8)


def tiny(device="cpu"):
    torch.manual_seed(0)
    return AttLightEnhancer(TINY).to(device).eval()


def test_output_shapes(device):
    model = tiny(device)
    inputs = [x.to(device) for x in example_inputs(5)]
    logit, prob, share = model(*inputs)
    assert logit.shape == (5,) and prob.shape == (5,) and share.shape == (5, 3)
    torch.testing.assert_close(prob, torch.sigmoid(logit))


@pytest.mark.parametrize("masked", [0, 1, 2])
def test_masked_modality_values_do_not_matter(masked):
    model = tiny()
    seq, h, a, mask = example_inputs(4, seed=1)
    mask[:, masked] = 0
    inputs = [seq, h, a]
    zeroed = [x.clone() for x in inputs]
    zeroed[masked].zero_()
    noisy = [x.clone() for x in inputs]
    noisy[masked] = torch.rand_like(noisy[masked]) * 50
    with torch.no_grad():
        out_zero = model(*zeroed, mask)
        out_noisy = model(*noisy, mask)
    for x, y in zip(out_zero, out_noisy, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6)


def test_all_masked_is_finite():
    model = tiny()
    seq, h, a, mask = example_inputs(3)
    with torch.no_grad():
        logit, prob, share = model(seq * 0, h * 0, a * 0, mask * 0)
    assert torch.isfinite(logit).all() and torch.isfinite(prob).all()
    assert torch.equal(share, torch.zeros_like(share))


def test_share_sums_to_one_over_present():
    model = tiny()
    seq, h, a, _ = example_inputs(7)
    masks = torch.tensor(
        [[1, 1, 1], [1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0], [0, 0, 1]]
    ).float()
    with torch.no_grad():
        _, _, share = model(seq, h, a, masks)
    torch.testing.assert_close(share.sum(1), torch.ones(7))
    assert torch.all(share[masks == 0] == 0)
    assert torch.all(share >= 0)


def test_fast_training_path_matches_explicit_attention():
    model = tiny()
    seq, h, a, mask = example_inputs(4)
    mask[1, 2] = 0
    mask[2, 0] = 0
    with torch.no_grad():
        explicit = model.logits(seq, h, a, mask, fast=False)
        fused = model.logits(seq, h, a, mask, fast=True)
    torch.testing.assert_close(explicit, fused, rtol=1e-4, atol=1e-5)


def test_configured_sizes():
    teacher = AttLightEnhancer(ModelConfig.from_dict(DEFAULTS["teacher"]["model"]))
    student = AttLightEnhancer(ModelConfig.from_dict(DEFAULTS["student"]["model"]))
    ratio = parameter_count(student) / parameter_count(teacher)
    assert 0.185 <= ratio <= 0.23


def test_gradients_flow():
    model = tiny().train()
    seq, h, a, mask = example_inputs(2)
    model.logits(seq, h, a, mask).sum().backward()
    assert model.sequence_stem.motif.weight.grad is not None
    assert model.h3k27ac_stem.conv1.weight.grad is not None
