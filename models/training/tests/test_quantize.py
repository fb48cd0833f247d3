"""int8 quantisation: static QDQ of the weight matmuls is batch-invariant; a dynamic graph is refused."""

import pytest

torch = pytest.importorskip("torch")

from cistrack_training import quantize  # noqa: E402
from cistrack_training.export import export_onnx, ort_session  # noqa: E402
from cistrack_training.model import AttLightEnhancer, ModelConfig, example_inputs  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.mark.parametrize(
    "layout",
    [{}, {"sequence_token_mask": True, "both_strands": True, "sequence_blocks": 2, "composition_k": 3}],
    ids=["0.2.0-layout", "0.3.0-layout"],
)
def test_static_int8_is_batch_invariant_and_dynamic_is_refused(tmp_path, layout):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    torch.manual_seed(0)
    config = ModelConfig(d_model=32, heads=4, encoder_layers=1, stem_channels=16, signal_channels=8, **layout)
    fp32 = tmp_path / "fp32.onnx"
    export_onnx(AttLightEnhancer(config).eval(), fp32, {"cistrack.name": "tiny"})
    inputs = {k: t.numpy() for k, t in zip(quantize.INPUT_NAMES, example_inputs(64, seed=3), strict=True)}
    names = quantize.weight_matmuls(fp32)
    assert names, "the tiny model has weight matmuls"
    static = tmp_path / "static.onnx"
    assert quantize.quantise(fp32, static, inputs) == names
    _, spread = quantize.batch_invariant_outputs(ort_session(static), inputs)
    assert spread <= quantize.MAX_BATCH_SPREAD
    # dynamic quantisation of the same weight matmuls (value_info dropped, as quantise does)
    import onnx

    plain = onnx.load(str(fp32))
    del plain.graph.value_info[:]
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    dynamic = tmp_path / "dynamic.onnx"
    quantize_dynamic(
        str(tmp_path / "plain.onnx"), str(dynamic), weight_type=QuantType.QInt8, nodes_to_quantize=names
    )
    with pytest.raises(SystemExit, match="logits depend on the batch"):
        quantize.batch_invariant_outputs(ort_session(dynamic), inputs)
