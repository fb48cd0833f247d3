"""Link model ONNX export: ONNX Runtime matches PyTorch, dynamic genes/candidates, all-padding gene."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from cistrack_training.export import ort_session, sha256  # noqa: E402
from cistrack_training.link_export import MODELS_ROOT, NAME, export_encoder, export_predictor  # noqa: E402
from cistrack_training.link_model import (  # noqa: E402
    ENCODER_OUTPUTS,
    PREDICTOR_INPUTS,
    PREDICTOR_OUTPUTS,
    LinkModelConfig,
    LinkNetwork,
    example_predictor_inputs,
)

pytestmark = [pytest.mark.torch, pytest.mark.onnx]

SHIPPED = MODELS_ROOT / NAME / "0.1.0"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    config = LinkModelConfig(dropout=0.0, encoder_channels=16, encoder_dilations=[1, 2])
    model = LinkNetwork(config).eval()
    out = tmp_path_factory.mktemp("link")
    meta = {"cistrack.kind": "link"}
    export_encoder(model, out / "encoder.onnx", meta)
    export_predictor(model, out / "predictor.onnx", meta)
    return model, out


def test_predictor_matches_pytorch_at_other_shapes(exported):
    model, out = exported
    session = ort_session(out / "predictor.onnx")
    # shapes differ from the tracing example (3 genes, 5 candidates); gene 0 has no candidate
    for genes, candidates in ((1, 1), (7, 13), (2, 60)):
        inputs = example_predictor_inputs(genes, candidates, model.config)
        with torch.no_grad():
            want = model.predictor(*inputs)
        got = session.run(
            PREDICTOR_OUTPUTS, {n: t.numpy() for n, t in zip(PREDICTOR_INPUTS, inputs, strict=True)}
        )
        for g, w in zip(got, want, strict=True):
            assert g.shape == tuple(w.shape)
            assert np.all(np.isfinite(g))
            np.testing.assert_allclose(g, w.numpy(), atol=1e-5)
        # the all-padding gene: attention 0, not NaN (the clamp_min pitfall)
        assert np.all(got[1][0] == 0)


def test_all_padding_batch(exported):
    model, out = exported
    session = ort_session(out / "predictor.onnx")
    inputs = [t.numpy() for t in example_predictor_inputs(4, 3, model.config)]
    inputs[-1] = np.zeros_like(inputs[-1])
    expression, attention = session.run(PREDICTOR_OUTPUTS, dict(zip(PREDICTOR_INPUTS, inputs, strict=True)))
    assert np.all(np.isfinite(expression))
    assert np.all(attention == 0)


def test_encoder_matches_pytorch(exported):
    model, out = exported
    session = ort_session(out / "encoder.onnx")
    g = torch.Generator().manual_seed(2)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (5, 2000), generator=g), 4).float().transpose(1, 2)
    x[4] = 0.0  # an all-N window
    with torch.no_grad():
        want = model.encoder(x).numpy()
    (got,) = session.run(ENCODER_OUTPUTS, {"sequence": x.numpy()})
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.skipif(not (SHIPPED / "model.json").exists(), reason="link model not exported yet")
def test_shipped_model_checksums_and_golden():
    spec = json.loads((SHIPPED / "model.json").read_text())
    assert spec["kind"] == "link"
    for graph in ("encoder", "predictor"):
        assert sha256(SHIPPED / spec["graphs"][graph]["onnx"]) == spec["graphs"][graph]["sha256"]
        assert (SHIPPED / spec["graphs"][graph]["onnx"]).stat().st_size < 4_000_000
    golden = SHIPPED / spec["golden"]["dir"]
    pred = spec["golden"]["predictor"]
    inputs = {k: np.load(golden / v) for k, v in pred["inputs"].items()}
    want = {k: np.load(golden / v) for k, v in pred["outputs"].items()}
    session = ort_session(SHIPPED / spec["graphs"]["predictor"]["onnx"])
    got = dict(zip(PREDICTOR_OUTPUTS, session.run(PREDICTOR_OUTPUTS, inputs), strict=True))
    for k in PREDICTOR_OUTPUTS:
        np.testing.assert_allclose(got[k], want[k], atol=spec["golden"]["atol"])
    assert np.any(inputs["candidate_mask"].sum(1) == 0), "golden genes include the all-padding case"
    enc = spec["golden"]["encoder"]
    seq = np.load(golden / enc["inputs"]["sequence"]).astype(np.float32)
    (emb,) = ort_session(SHIPPED / spec["graphs"]["encoder"]["onnx"]).run(ENCODER_OUTPUTS, {"sequence": seq})
    np.testing.assert_allclose(
        emb, np.load(golden / enc["outputs"]["embedding"]), atol=spec["golden"]["atol"]
    )
