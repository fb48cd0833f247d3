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


def masked_tiny(**flags):
    from dataclasses import replace

    torch.manual_seed(0)
    return AttLightEnhancer(replace(TINY, **flags)).eval()


def test_sequence_token_mask_changes_nothing_when_every_base_is_present():
    plain, masked = masked_tiny(), masked_tiny(sequence_token_mask=True)
    masked.load_state_dict(plain.state_dict())
    inputs = example_inputs(4, seed=2)
    with torch.no_grad():
        for x, y in zip(plain(*inputs), masked(*inputs), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-6)


def test_sequence_tokens_without_bases_are_ignored():
    model = masked_tiny(sequence_token_mask=True)
    seq, h, a, mask = example_inputs(3, seed=3)
    # an all-N sequence counts as a missing sequence modality
    none = torch.zeros_like(seq)
    no_seq = mask.clone()
    no_seq[:, 0] = 0
    with torch.no_grad():
        for x, y in zip(model(none, h, a, mask), model(none, h, a, no_seq), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-6)
    # a 200-bp record centred in N: the unmasked model (same weights) also pools the 180 N
    # tokens around it, so the two differ
    record = torch.zeros_like(seq)
    record[:, :, 900:1100] = seq[:, :, 900:1100]
    only = torch.tensor([[1.0, 0.0, 0.0]]).repeat(3, 1)
    plain = masked_tiny()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        masked_logit = model(record, h * 0, a * 0, only)[0]
        plain_logit = plain(record, h * 0, a * 0, only)[0]
    assert torch.isfinite(masked_logit).all()
    assert not torch.allclose(masked_logit, plain_logit, atol=1e-4)


def test_sequence_blocks_let_a_token_see_its_neighbours():
    from cistrack_training.model import SequenceStem

    torch.manual_seed(0)
    seq = example_inputs(1, seed=5)[0]
    moved = seq.clone()
    moved[:, :, 1050:1060] = moved[:, :, 1050:1060].roll(1, dims=1)  # token 105's bases
    reach = {}
    for blocks in (0, 2):
        stem = SequenceStem(16, 8, 15, blocks).eval()
        with torch.no_grad():
            changed = (stem(seq) - stem(moved)).abs().amax(dim=-1)[0] > 1e-6
        reach[blocks] = changed.nonzero().flatten().tolist()
    # the motif's 7 bp reach tokens 104 and 106, the token conv one more each side
    assert reach[0] == [103, 104, 105, 106, 107]
    # dilations 2 and 4 add 2 + 4 tokens each side
    assert min(reach[2]) == 97 and max(reach[2]) == 113
    # a model without blocks has the 0.2.0 parameter names (old checkpoints load unchanged)
    names = set(masked_tiny().state_dict())
    assert not any(".blocks." in n for n in names)
    assert any(".blocks." in n for n in masked_tiny(sequence_blocks=2).state_dict())


def test_both_strands_scores_a_window_and_its_reverse_complement_alike():
    from cistrack_training.model import reverse_complement

    model = masked_tiny(sequence_token_mask=True, both_strands=True)
    seq, h, a, mask = example_inputs(4, seed=4)
    seq[:, :, :300] = 0  # an N stretch at one end
    rc = reverse_complement(seq, h, a)
    with torch.no_grad():
        fwd, back = model(seq, h, a, mask), model(*rc, mask)
        for x, y in zip(fwd, back, strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-5)
        # and the exported rule is strand_logits, the mean of the two one-strand logits
        one = model.logits(seq, h, a, mask, fast=False)
        other = model.logits(*rc, mask, fast=False)
        torch.testing.assert_close(fwd[0], 0.5 * (one + other), rtol=0, atol=1e-5)
        torch.testing.assert_close(
            model.strand_logits(seq, h, a, mask, fast=False), fwd[0], rtol=0, atol=1e-5
        )
    # reverse_complement: A<->T, C<->G, reversed; applied twice it is the identity
    onehot = torch.zeros(1, 4, 2000)
    onehot[0, 0, 0] = 1  # A at position 0
    onehot[0, 1, 5] = 1  # C at position 5
    r, _, _ = reverse_complement(onehot, torch.zeros(1, 200), torch.zeros(1, 200))
    assert r[0, 3, 1999] == 1 and r[0, 2, 1994] == 1 and r.sum() == 2
    twice = reverse_complement(*reverse_complement(seq, h, a))
    for x, y in zip(twice, (seq, h, a), strict=True):
        assert torch.equal(x, y)


def test_composition_counts_kmers_by_hand():
    from cistrack_training.model import Composition

    comp = Composition(2)
    assert comp.width == 4 + 16
    seq = torch.zeros(2, 4, 6)
    for i, b in enumerate([0, 1, 2, -1, 3, 3]):  # A C G N T T
        if b >= 0:
            seq[0, b, i] = 1.0
    out = comp(seq)
    # 1-mers A C G T T of 5: (frequency * 4) - 1
    torch.testing.assert_close(out[0, :4], torch.tensor([-0.2, -0.2, -0.2, 0.6]))
    # 2-mers AC, CG, TT of 3 (GN and NT hold an N): (1/3 * 16) - 1; the other 13 read -1
    two = out[0, 4:]
    for code in (0 * 4 + 1, 1 * 4 + 2, 3 * 4 + 3):
        assert two[code].item() == pytest.approx(16 / 3 - 1)
    assert (two == -1).sum() == 13
    # a window without bases reads 0 everywhere
    assert torch.equal(out[1], torch.zeros(20))


@pytest.mark.parametrize("masked", [0, 1, 2])
def test_composition_respects_the_modality_mask(masked):
    model = masked_tiny(sequence_token_mask=True, both_strands=True, composition_k=3)
    assert any(n.startswith("composition_proj.") for n in model.state_dict())
    # the k-mer filters are fixed and not saved: checkpoints hold trainable weights only
    assert not any(n.startswith("composition.") for n in model.state_dict())
    seq, h, a, mask = example_inputs(3, seed=6)
    mask[:, masked] = 0
    inputs = [seq, h, a]
    noisy = [x.clone() for x in inputs]
    noisy[masked] = torch.rand_like(noisy[masked]) if masked else example_inputs(3, seed=7)[0]
    with torch.no_grad():
        for x, y in zip(model(*inputs, mask), model(*noisy, mask), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-6)
    # with the sequence present, its composition reaches the logit
    present = torch.ones(3, 3)
    with torch.no_grad():
        before = model(seq, h, a, present)[0]
        model.composition_proj[1].weight.mul_(3.0)
        after = model(seq, h, a, present)[0]
    assert not torch.allclose(before, after, atol=1e-4)


MOE = ModelConfig(
    d_model=32,
    heads=4,
    encoder_layers=1,
    dropout=0.0,
    stem_channels=16,
    signal_channels=8,
    moe_experts=4,
    moe_top_k=2,
)


def test_dense_models_keep_their_layout():
    # the shipped checkpoints' keys: a dense feed-forward is the same Sequential as before
    keys = set(AttLightEnhancer(TINY).state_dict())
    assert "encoder.0.ff.0.weight" in keys and not any("router" in k for k in keys)


def test_sparse_moe_routes_each_token_to_its_top_k_experts():
    from cistrack_training.model import SparseMoE

    torch.manual_seed(0)
    moe = SparseMoE(d_model=8, hidden=16, experts=4, top_k=2, dropout=0.0).eval()
    x = torch.randn(3, 5, 8)
    probs, gates = moe.gates(x)
    assert ((gates > 0).sum(-1) == 2).all()
    torch.testing.assert_close(gates.sum(-1), torch.ones(3, 5))
    chosen = probs.topk(2, dim=-1).indices
    assert ((gates > 0) == torch.zeros_like(gates, dtype=torch.bool).scatter(-1, chosen, True)).all()
    out = moe(x, torch.ones(3, 5))
    # by hand: each token's two experts, weighted by their renormalised probabilities
    want = torch.zeros_like(out)
    for b in range(3):
        for n in range(5):
            for e in chosen[b, n]:
                h = torch.nn.functional.gelu(x[b, n] @ moe.w1[e] + moe.b1[e])
                want[b, n] += gates[b, n, e] * (h @ moe.w2[e] + moe.b2[e])
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    # an expert no token chose does not change the output
    unused = [e for e in range(4) if not (chosen == e).any()]
    if unused:
        with torch.no_grad():
            moe.w1[unused[0]].normal_()
        torch.testing.assert_close(moe(x, torch.ones(3, 5)), out)


def test_balance_loss_is_one_when_balanced_and_pushes_a_favoured_expert_down():
    from cistrack_training.model import SparseMoE

    moe = SparseMoE(d_model=4, hidden=8, experts=4, top_k=1, dropout=0.0).train()
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.bias.zero_()
        moe.router.weight[:, :] = torch.eye(4) * 10  # token i -> expert i
    x = torch.eye(4).repeat(2, 1)[None]  # every expert gets a quarter of the tokens
    moe(x, torch.ones(1, 8))
    assert abs(moe.balance.item() - 1.0) < 1e-3
    with torch.no_grad():
        moe.router.bias[0] = 20.0  # every token to expert 0
    moe(x, torch.ones(1, 8))
    assert moe.balance.item() > 3.9
    moe.balance.backward()
    assert moe.router.bias.grad[0] > 0  # gradient descent lowers expert 0's bias
    # masked tokens do not count: the balanced half alone
    moe.router.bias.grad = None
    with torch.no_grad():
        moe.router.bias[0] = 0.0
    x2 = torch.cat([torch.eye(4), torch.eye(4)[:1].repeat(4, 1)])[None]
    moe(x2, torch.tensor([[1.0] * 4 + [0.0] * 4]))
    assert abs(moe.balance.item() - 1.0) < 1e-3


def test_moe_model_trains_and_counts_active_parameters():
    from cistrack_training.model import active_parameter_count

    torch.manual_seed(0)
    model = AttLightEnhancer(MOE).train()
    dense = AttLightEnhancer(ModelConfig(**{**MOE.to_dict(), "moe_experts": 0}))
    seq, h, a, mask = example_inputs(6, seed=2)
    logit = model.logits(seq, h, a, mask)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.ones(6))
    (loss + 0.01 * model.balance_loss()).backward()
    assert model.balance_loss().item() >= 1.0 - 1e-4
    assert model.encoder[0].ff.router.weight.grad.abs().sum() > 0
    assert model.encoder[0].ff.w1.grad.abs().sum() > 0
    ff = 2 * 32 * 128 + 128 + 32
    assert parameter_count(model) == parameter_count(dense) + 3 * ff + (32 * 4 + 4)
    assert active_parameter_count(model) == parameter_count(dense) + ff + (32 * 4 + 4)
    assert active_parameter_count(dense) == parameter_count(dense)
    assert AttLightEnhancer(TINY).balance_loss().item() == 0.0
