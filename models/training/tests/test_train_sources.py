"""Pieces of the multi-source training CLI: masks, the CNN baseline, evaluation determinism."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cistrack_training import sources, train_sources  # noqa: E402
from cistrack_training.config import merge  # noqa: E402

pytestmark = pytest.mark.torch


def test_present_mask_respects_availability():
    rng = np.random.default_rng(0)
    available = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 1]] * 400, dtype=np.float32)
    mask = train_sources.present_mask(available, 0.6, rng)
    assert np.all(mask <= available)
    assert np.all(mask.sum(1) >= 1)
    # sequence-only windows keep their sequence; full windows lose modalities sometimes
    assert np.all(mask[0::3] == [1, 0, 0])
    assert (mask[2::3].sum(1) < 3).mean() > 0.5
    np.testing.assert_array_equal(train_sources.present_mask(available, 0.6, None), available)


def test_cnn_ignores_masked_inputs():
    torch.manual_seed(0)
    model = train_sources.TwoBranchCNN(channels=8, signal_channels=4, hidden=8).eval()
    seq = torch.rand(3, 4, 2000)
    h, a = torch.rand(3, 200), torch.rand(3, 200)
    mask = torch.tensor([[1.0, 0, 1], [0, 1, 1], [1, 1, 0]])
    base = model.logits(seq, h, a, mask)
    noisy = model.logits(
        seq + (1 - mask[:, 0, None, None]) * torch.rand(3, 4, 2000),
        h + (1 - mask[:, 1, None]) * 5,
        a + (1 - mask[:, 2, None]) * 5,
        mask,
    )
    torch.testing.assert_close(base, noisy)
    assert torch.all(torch.isfinite(model.logits(seq, h, a, torch.zeros(3, 3))))


def test_evaluation_uses_the_same_thinned_inputs_for_every_model(shared_data):
    config = merge(
        sources.defaults(),
        {
            "sources": {"windows": {"simulated": {"train": 4, "validation": 4, "test": 24}}},
            "evaluation": {"coverage_levels": [1.0, 0.1], "coverage_seeds": 2},
            "student": {"model": {"d_model": 16, "heads": 2, "stem_channels": 8, "signal_channels": 4}},
        },
    )
    data = sources.simulated(config, "test")
    torch.manual_seed(1)
    model = train_sources.build_model("student", config).eval()
    calibrations = {"a": {"method": "temperature", "temperature": 2.0}}
    out = train_sources.evaluate_source(
        {"a": model, "b": model}, data, config, torch.device("cpu"), calibrations
    )
    a, b = out["models"]["a"], out["models"]["b"]
    assert a["coverage"] == b["coverage"] and a["full"] == b["full"]
    assert "full_calibrated" in a and "full_calibrated" not in b
    assert 0.0 < a["full_calibrated"]["ece_floor"]["mean"] < a["full_calibrated"]["ece_floor"]["q95"]
    assert a["coverage"]["10%"]["seeds"] == 2
    assert set(a["ablation"]) == {"without_sequence", "without_h3k27ac", "without_accessibility"}
    shares = a["attention_share_on_predicted_enhancers"]
    assert set(shares) == {"n_windows", "sequence", "h3k27ac", "accessibility"}
    table = train_sources.tables({"models": {"a": {}, "b": {}}, "test": {"simulated": out}})
    assert "| a | " in table and "AUROC 10%" in table
    floor = a["full_calibrated"]["ece_floor"]["mean"]
    assert f"{a['full_calibrated']['ece']:.3f} ({floor:.3f})" in table and "ECE floor" in table


def test_resume_stage_restores_or_refuses_to_overwrite(tmp_path):
    from cistrack_training.train import resume_stage, save_checkpoint

    model = torch.nn.Linear(3, 1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=0.1)
    last = tmp_path / "teacher" / "last.pt"
    last.parent.mkdir()
    fresh = {"epochs": []}
    assert resume_stage(last, model, optimiser, torch.device("cpu"), False, "teacher", 3, fresh) == (
        fresh,
        -1.0,
        0,
    )
    saved = {k: v.clone() + 1 for k, v in model.state_dict().items()}
    save_checkpoint(
        last,
        model=saved,
        optimiser=optimiser.state_dict(),
        epoch=1,
        history={"epochs": [1, 2]},
        best_auroc=0.7,
    )
    with pytest.raises(SystemExit, match="last.pt exists; pass --resume"):
        resume_stage(last, model, optimiser, torch.device("cpu"), False, "teacher", 3, fresh)
    history, best, start = resume_stage(
        last, model, optimiser, torch.device("cpu"), True, "teacher", 3, fresh
    )
    assert (history, best, start) == ({"epochs": [1, 2]}, 0.7, 2)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, saved[k])


def test_a_missing_warm_start_checkpoint_is_named(shared_data, tmp_path):
    config = merge(sources.defaults(), {"init": {"teacher": str(tmp_path / "none.pt")}})
    with pytest.raises(SystemExit, match=r"init.teacher: .*none.pt not found.*make train"):
        train_sources.init_checkpoint(config, "teacher")


def test_selection_score_rules():
    from cistrack_training.train_sources import selection_score

    per_source = {"ienhancer": 0.9, "k562_signal": 0.7}
    assert selection_score(0.85, per_source, "pooled") == 0.85
    assert selection_score(0.85, per_source, "mean_source") == pytest.approx(0.8)
    with pytest.raises(ValueError, match="selection 'best'"):
        selection_score(0.85, per_source, "best")


def test_jaspar_filters_respond_to_their_motif():
    import numpy as np

    from cistrack_training.model import jaspar_filters

    # a sharp 6-bp motif (GATAAG) and a 20-bp one whose informative core is at its end
    sharp = np.full((6, 4), 0.01)
    for i, b in enumerate("GATAAG"):
        sharp[i, "ACGT".index(b)] = 0.97
    long = np.full((20, 4), 0.25)
    long[-8:] = sharp[[0, 1, 2, 3, 4, 5, 0, 1]]
    weight, bias = jaspar_filters([sharp, long], 2, 15, seed=0)
    assert weight.shape == (2, 4, 15) and bias.shape == (2,)
    conv = torch.nn.Conv1d(4, 2, 15)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    for k in range(2):
        # the filter's best input is its own consensus: it responds; an unrelated one does not
        best = torch.nn.functional.one_hot(weight[k].argmax(0), 4).T.float()[None]
        assert conv(best)[0, k, 0] > 0
        poly_c = torch.zeros(1, 4, 15)
        poly_c[0, 1] = 1
        assert conv(poly_c)[0, k, 0] < 0
    # uniform columns weigh 0, so the long motif's filter shows which 15 columns were kept: all
    # 8 informative ones at its end (its first 15 columns would hold only 3)
    informative = sorted(int(w.abs().sum(0).gt(0).sum()) for w in weight)
    assert informative == [6, 8]
    with pytest.raises(ValueError, match="2 motifs for 3 filters"):
        jaspar_filters([sharp, long], 3, 15, seed=0)


def test_epochs_since_best_drives_early_stopping():
    from cistrack_training.train_sources import epochs_since_best

    assert epochs_since_best({"epochs": []}, 0) == 0
    history = {"epochs": [{}, {}, {}], "best_epoch": 1}
    assert epochs_since_best(history, 3) == 2  # patience 2 stops before epoch 4
    history["best_epoch"] = 3
    assert epochs_since_best(history, 3) == 0
