import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from cistrack_training import export  # noqa: E402
from cistrack_training.model import AttLightEnhancer, ModelConfig, example_inputs  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.onnx]

META = {"cistrack.name": "toy", "cistrack.version": "0", "cistrack.kind": "enhancer"}


@pytest.fixture(
    scope="module",
    params=[
        {},
        {"sequence_token_mask": True, "both_strands": True, "sequence_blocks": 2},
        {"sequence_token_mask": True, "both_strands": True, "sequence_blocks": 2, "composition_k": 3},
        {"sequence_token_mask": True, "both_strands": True, "moe_experts": 4, "moe_top_k": 2},
    ],
    ids=["0.2.0-layout", "0.3.0-layout", "composition", "sparse-moe"],
)
def exported(tmp_path_factory, request):
    torch.manual_seed(0)
    model = AttLightEnhancer(
        ModelConfig(
            d_model=32,
            heads=4,
            encoder_layers=1,
            dropout=0.1,
            stem_channels=16,
            signal_channels=8,
            **request.param,
        )
    ).eval()
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export.export_onnx(model, path, META)
    return model, path


def test_tiny_model_matches_onnxruntime(exported):
    model, path = exported
    seq, h, a, mask = example_inputs(64, seed=3)
    mask[: len(export.MASKS) * 8] = torch.tensor(export.MASKS, dtype=torch.float32).repeat(8, 1)
    inputs = {
        "sequence": seq.numpy(),
        "h3k27ac": h.numpy(),
        "accessibility": a.numpy(),
        "modality_mask": mask.numpy(),
    }
    expected = export.torch_outputs(model, inputs)
    report = export.check_parity(export.ort_session(path), inputs, expected)
    assert report["max_abs_diff"] <= 1e-4
    assert set(report) >= {"1", "7", "64"}
    all_masked = mask.sum(1) == 0
    assert np.all(np.isfinite(expected["logit"][all_masked.numpy()]))


def test_onnx_file_layout(exported):
    _, path = exported
    m = onnx.load(str(path))
    assert [i.name for i in m.graph.input] == export.INPUT_NAMES
    assert [o.name for o in m.graph.output] == export.OUTPUT_NAMES
    for v in [*m.graph.input, *m.graph.output]:
        assert v.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert {p.key: p.value for p in m.metadata_props}.items() >= META.items()
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)
    assert m.opset_import[0].version == 18


def test_golden_windows_cover_the_contract():
    windows = export.golden_windows()
    assert len(windows) == 64
    assert len({w[0] for w in windows}) == 64
    assert {w[1] for w in windows} == {"chr1", "chr2"}
    assert set(export.MASKS) == {w[4] for w in windows}
    assert any(w[1] == "chr2" and w[2] < 25000 and w[3] > 22000 for w in windows)
    assert any(w[1] == "chr2" and 22000 <= w[2] and w[3] <= 25000 for w in windows)  # all N
    assert any(w[2] < 0 for w in windows if w[1] == "chr1")
    assert any(w[2] < 0 for w in windows if w[1] == "chr2")
    assert any(w[3] > 60000 for w in windows if w[1] == "chr1")
    assert any(w[3] > 40000 for w in windows if w[1] == "chr2")
    assert all(w[3] - w[2] == 2000 for w in windows)
