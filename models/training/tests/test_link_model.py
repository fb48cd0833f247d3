"""Link model: attention mask, padding, the all-padding gene, sequence masking."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cistrack_training.link_model import (  # noqa: E402
    LinkModel,
    LinkModelConfig,
    LinkNetwork,
    SequenceEncoder,
    attention_bias,
    example_predictor_inputs,
)

pytestmark = pytest.mark.torch

CONFIG = LinkModelConfig(dropout=0.0)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return LinkModel(CONFIG).eval()


def layer_weights(model: LinkModel, inputs) -> list[torch.Tensor]:
    """Attention weights of every layer, recorded with forward hooks."""
    seen = []
    hooks = [
        layer.attention.register_forward_hook(lambda m, a, out: seen.append(out[1])) for layer in model.layers
    ]
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()
    return seen


def test_attention_bias_by_hand():
    mask = torch.tensor([[1.0, 0.0]])  # candidate 1 present, candidate 2 padding
    allowed = attention_bias(mask)[0] == 0
    expected = torch.tensor(
        [
            # keys: promoter, c1, c2(pad)
            [True, True, False],  # promoter sees every present token
            [True, True, False],  # c1: promoter and itself
            [True, False, False],  # padded c2's own query: promoter only (itself is not a key)
        ]
    )
    assert torch.equal(allowed, expected)
    assert torch.all(attention_bias(mask)[0][~expected] == -1e4)


def test_enhancers_attend_only_to_promoter_and_themselves(model):
    inputs = example_predictor_inputs(4, 9, CONFIG)
    mask = inputs[-1]
    for w in layer_weights(model, inputs):
        b, h, t, _ = w.shape
        assert t == 10
        for i in range(1, t):
            for j in range(1, t):
                if i != j:
                    assert torch.all(w[:, :, i, j] == 0), (i, j)
        # no query ever puts weight on a padded key
        pad = (mask == 0)[:, None, None, :].expand(b, h, t, t - 1)
        assert torch.all(w[:, :, :, 1:][pad] == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(b, h, t))


def test_attention_output_is_normalised_promoter_attention(model):
    inputs = example_predictor_inputs(5, 7, CONFIG)
    mask = inputs[-1]
    with torch.no_grad():
        _, attention = model(*inputs)
    weights = layer_weights(model, inputs)
    p = torch.stack([w[:, :, 0, 1:].mean(1) for w in weights]).mean(0) * mask
    expected = p / p.sum(-1, keepdim=True).clamp_min(1e-9)
    torch.testing.assert_close(attention, expected)
    has = mask.sum(1) > 0
    torch.testing.assert_close(attention[has].sum(1), torch.ones(int(has.sum())))
    assert torch.all(attention[mask == 0] == 0)


def test_all_padding_gene_is_finite(model):
    inputs = list(example_predictor_inputs(3, 4, CONFIG))
    inputs[-1] = torch.zeros(3, 4)  # no gene has a candidate
    with torch.no_grad():
        expression, attention = model(*inputs)
    assert torch.all(torch.isfinite(expression))
    assert torch.all(attention == 0)


def test_padding_and_masked_values_do_not_change_outputs(model):
    inputs = example_predictor_inputs(4, 6, CONFIG)
    with torch.no_grad():
        expression, attention = model(*inputs)
    g = torch.Generator().manual_seed(3)
    # append 5 padded candidates full of junk
    extra = 5
    padded = list(inputs)
    for k in (3, 4, 5):
        shape = (4, extra) + tuple(inputs[k].shape[2:])
        padded[k] = torch.cat([inputs[k], torch.randn(*shape, generator=g)], dim=1)
    padded[6] = torch.cat([inputs[6], torch.zeros(4, extra)], dim=1)
    # junk in masked-out existing slots too
    junk_slots = inputs[6] == 0
    padded[5] = padded[5].clone()
    padded[5][:, :6][junk_slots] = 99.0
    with torch.no_grad():
        e2, a2 = model(*padded)
    torch.testing.assert_close(e2, expression)
    torch.testing.assert_close(a2[:, :6], attention)
    assert torch.all(a2[:, 6:] == 0)


def test_sequence_mask_hides_the_embedding(model):
    inputs = list(example_predictor_inputs(3, 5, CONFIG))
    inputs[1] = torch.zeros(3)
    inputs[4] = torch.zeros(3, 5)
    with torch.no_grad():
        e1, a1 = model(*inputs)
        inputs[0] = torch.randn(3, CONFIG.d_model) * 10
        inputs[3] = torch.randn(3, 5, CONFIG.d_model) * 10
        e2, a2 = model(*inputs)
    torch.testing.assert_close(e1, e2)
    torch.testing.assert_close(a1, a2)


def test_batch_invariance(model):
    inputs = example_predictor_inputs(6, 8, CONFIG)
    with torch.no_grad():
        e, a = model(*inputs)
        for i in range(6):
            ei, ai = model(*(x[i : i + 1] for x in inputs))
            torch.testing.assert_close(ei, e[i : i + 1], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(ai, a[i : i + 1], atol=1e-6, rtol=1e-5)


def test_encoder_shapes_and_all_n_window():
    torch.manual_seed(0)
    enc = SequenceEncoder(CONFIG).eval()
    x = torch.zeros(3, 4, 2000)
    x[0, 0] = 1.0
    with torch.no_grad():
        out = enc(x)
    assert out.shape == (3, CONFIG.d_model)
    assert torch.all(torch.isfinite(out))


def test_network_equals_encoder_then_predictor():
    torch.manual_seed(0)
    net = LinkNetwork(CONFIG).eval()
    g = torch.Generator().manual_seed(1)
    one_hot = (
        torch.nn.functional.one_hot(torch.randint(0, 4, (3, 2000), generator=g), 4).float().transpose(1, 2)
    )
    p_seq = torch.tensor([0, -1])
    c_seq = torch.tensor([[1, -1, 2], [-1, -1, -1]])
    pf = torch.rand(2, 5, generator=g)
    cf = torch.rand(2, 3, 5, generator=g)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    with torch.no_grad():
        e, a = net(one_hot, p_seq, pf, c_seq, cf, mask)
        emb = net.encoder(one_hot)
        pe = torch.stack([emb[0], torch.zeros(CONFIG.d_model)])
        ce = torch.zeros(2, 3, CONFIG.d_model)
        ce[0, 0], ce[0, 2] = emb[1], emb[2]
        e2, a2 = net.predictor(pe, torch.tensor([1.0, 0.0]), pf, ce, (c_seq >= 0).float(), cf, mask)
    torch.testing.assert_close(e, e2)
    torch.testing.assert_close(a, a2)
    np.testing.assert_allclose(a.sum(1).numpy(), [1.0, 1.0], rtol=1e-6)
