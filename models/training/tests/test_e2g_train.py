"""E2G training (numpy only): the cross-validation is chromosome-disjoint, the matching and
threshold rules, the regression fit, and the shipped model's golden table (written by the Rust
runtime) read back with the features the runtime names."""

import json
from pathlib import Path

import numpy as np
import pytest

from cistrack_training import e2g_train

ROOT = Path(__file__).resolve().parents[3]
MODEL = ROOT / "models" / "link-e2g" / "0.1.0"
SHARED = (ROOT / ".." / "shared" / "data").resolve()
CRISPRI = "hg38/k562/crispri/EPCrisprBenchmark_combined_data.training_K562.GRCh38.tsv.gz"


def golden_table():
    return e2g_train.read_features(MODEL / "golden_features.tsv")


def test_cross_validation_is_chromosome_disjoint(monkeypatch):
    rng = np.random.default_rng(7)
    chrom = np.array([f"chr{c}" for c in rng.integers(1, 6, 400)])
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + rng.normal(size=400) > 1.0)
    seen = []
    real_fit = e2g_train.fit_model

    def recording_fit(xt, yt, lam):
        seen.append({tuple(r) for r in np.round(xt, 12)})
        return real_fit(xt, yt, lam)

    monkeypatch.setattr(e2g_train, "fit_model", recording_fit)
    held, lambdas = e2g_train.cross_validate(x, y, chrom)
    assert not np.isnan(held).any(), "every row is scored once"
    assert sorted(lambdas) == sorted(set(chrom.tolist()))
    # every fit (inner ones included) excludes the outer held-out chromosome's rows
    by_chrom = {c: {tuple(r) for r in np.round(x[chrom == c], 12)} for c in set(chrom.tolist())}
    for c, _, test in e2g_train.chromosome_folds(chrom):
        assert set(chrom[test].tolist()) == {c}
    outer = [s for s in seen if len(s) > 0]
    for c, rows in by_chrom.items():
        assert any(s.isdisjoint(rows) for s in outer), c
    # the held-out predictions differ from in-sample ones: a model never saw its own rows
    full = real_fit(x, y, 0.1)
    assert not np.allclose(held, e2g_train.predict_logit(full, x))


def test_fit_logistic_finds_the_optimum_on_collinear_features():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2000, 2))
    z = np.c_[z, z[:, 0] * 1.0000001]  # collinear column: plain Newton steps diverge here
    y = (rng.random(2000) < 1 / (1 + np.exp(-(1.5 * z[:, 0] - z[:, 1])))).astype(float)
    coef, intercept = e2g_train.fit_logistic(z, y, 1.0)
    assert np.all(np.abs(coef) < 5)
    # gradient of the penalised loss vanishes at the answer
    p = 1 / (1 + np.exp(-(z @ coef + intercept)))
    grad = z.T @ (p - y) + 1.0 * coef
    assert np.max(np.abs(grad)) < 1e-3
    assert abs(coef[0] + coef[2] - 1.5) < 0.2 and abs(coef[1] + 1.0) < 0.2


def test_threshold_at_recall():
    y = np.array([1, 1, 1, 1, 0, 0, 1, 0, 1, 1], bool)
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.2, 0.1])
    t = e2g_train.threshold_at_recall(y, p, 0.7)
    recall = (p[y] >= t).mean()
    assert recall >= 0.7 and t == 0.4


def test_golden_table_is_the_runtime_feature_set():
    spec = json.loads((MODEL / "model.json").read_text())
    assert set(spec["features"]) <= set(e2g_train.FEATURES) and spec["features"]
    assert len(spec["coefficients"]) == len(spec["features"]) == len(spec["mean"])
    table = golden_table()
    assert table.x.shape[1] == len(e2g_train.FEATURES)
    assert "reach=" + str(spec["max_distance"]) in table.header
    assert 0 < spec["threshold"] < 1 and spec["threshold_recall"] == 0.7
    # ABC with the promoter in the denominator: a gene's ABC scores sum to less than 1
    for g in set(table.gene_id.tolist()):
        total = table.abc[table.gene_id == g].sum()
        assert 0 < total < 1, g


def test_match_pairs_picks_the_overlapping_candidate_with_the_highest_abc():
    table = golden_table()
    records = e2g_train.read_crispri(SHARED / CRISPRI)
    genes = set(table.gene_id.tolist())
    mine = [r for r in records if r["measuredGeneEnsemblId"] in genes]
    assert mine, "the golden genes are benchmark genes"
    pairs = e2g_train.match_pairs(mine, table)
    for r, row in zip(mine, pairs.row):
        s, e = int(r["chromStart"]), int(r["chromEnd"])
        hits = np.nonzero(
            (table.gene_id == r["measuredGeneEnsemblId"]) & (table.start < e) & (table.end > s)
        )[0]
        if len(hits) == 0:
            assert row == -1
        else:
            assert row in hits and table.abc[row] == table.abc[hits].max()


def test_read_features_rejects_other_tables(tmp_path):
    bad = tmp_path / "x.tsv"
    bad.write_text("chrom\tstart\nchr1\t5\n")
    with pytest.raises(SystemExit, match="not a `cistrack links` TSV"):
        e2g_train.read_features(bad)
