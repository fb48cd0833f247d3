import numpy as np
import pytest

pytest.importorskip("torch")

from cistrack_training import kmer_baseline  # noqa: E402

pytestmark = pytest.mark.torch


def _seq(text: str, width: int = 12) -> np.ndarray:
    return np.frombuffer(text.ljust(width, "N").encode(), dtype=np.uint8)


def test_canonical_frequencies_by_hand():
    f = kmer_baseline.kmer_frequencies(np.stack([_seq("ACGN"), _seq("NNNNT")]), 2)
    # k = 1: A, C, G and their complements T, G, C -> A 1, C 2, G 2, T 1 of 6
    assert f[0, :4] == pytest.approx(np.array([1, 2, 2, 1]) / 6)
    # k = 2 (index 4 + 4*a + b): AC, CG forward; CG, GT reverse
    two = f[0, 4:].reshape(4, 4)
    assert (
        two[0, 1] == pytest.approx(0.25)
        and two[1, 2] == pytest.approx(0.5)
        and two[2, 3] == pytest.approx(0.25)
    )
    # one base: k = 1 counts T and A; no 2-mer
    assert f[1, :4] == pytest.approx([0.5, 0, 0, 0.5]) and not f[1, 4:].any()
    # a sequence and its reverse complement have the same features
    a, b = kmer_baseline.kmer_frequencies(np.stack([_seq("AACGTTTGCA"), _seq("TGCAAACGTT")]), 3)
    assert a == pytest.approx(b)


def _gc_task(n: int, rng: np.random.Generator):
    """Label 1: GC-rich (60 %) records; label 0: AT-rich (40 %); 40 bases each in a padded window."""
    y = rng.random(n) < 0.5
    gc = np.where(y, 0.6, 0.4)
    rows = []
    for g in gc:
        pick = rng.random(40) < g
        bases = np.where(pick, rng.choice([ord("C"), ord("G")], 40), rng.choice([ord("A"), ord("T")], 40))
        rows.append(np.r_[np.full(10, ord("N")), bases, np.full(10, ord("N"))].astype(np.uint8))
    return np.stack(rows), y.astype(np.float32)


def test_select_chooses_on_validation_and_learns_composition():
    rng = np.random.default_rng(0)
    splits = {s: _gc_task(n, rng) for s, n in (("train", 300), ("validation", 150), ("test", 150))}
    out = kmer_baseline.select(splits, grid_k=(1, 3), grid_penalty=(1e-2, 1.0))
    assert len(out["grid"]) == 4
    best = max(out["grid"], key=lambda g: g["validation_auroc"])
    assert out["chosen"] == {"k_max": best["k_max"], "penalty": best["penalty"]}
    assert out["validation_auroc"] == best["validation_auroc"]
    assert out["test_auroc"] > 0.85
    # a model that is the k-mer logits plus noise correlates with them; pure noise does not
    noise = {s: rng.normal(size=len(splits[s][1])) for s in ("validation", "test")}
    labels = {s: splits[s][1] for s in ("validation", "test")}
    same = kmer_baseline.with_model(out, {s: out["logits"][s] + 0.1 * noise[s] for s in noise}, labels)
    other = kmer_baseline.with_model(out, noise, labels)
    assert same["validation_pearson_with_kmer"] > 0.9
    assert abs(other["validation_pearson_with_kmer"]) < 0.3
    assert other["mean_with_kmer"]["kmer_weight"] >= 0.75


def test_main_names_a_missing_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        kmer_baseline.main([str(tmp_path)])
    assert "ienhancer-train.npz does not exist" in capsys.readouterr().err
