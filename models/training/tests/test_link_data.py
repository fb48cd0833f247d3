"""Link-model dataset builder on real K562 data (torch-free: CI runs these with -m "not torch")."""

import csv
import gzip
import math

import numpy as np
import pytest

from cistrack_training import encode
from cistrack_training.config import data_path
from cistrack_training.link_config import load_link_config
from cistrack_training.link_data import (
    FEATURES,
    SPLIT_CODES,
    build_dataset,
    element_features,
    gene_expression,
    pair_slots,
    powerlaw_contact,
    powerlaw_reference,
    read_crispri,
    read_genes,
    select_candidates,
    window_mean,
)

GAMMA = 1.024238616787792
SCALE = 5.9594510043736655


def brute_force_selection(tss, start, end, max_distance, max_candidates, exclusion):
    rows = []
    for i in range(len(start)):
        mid = (start[i] + end[i]) // 2
        d = abs(mid - tss)
        overlaps = start[i] < tss + exclusion and end[i] > tss - exclusion
        if d <= max_distance and not overlaps:
            rows.append((d, start[i], i))
    rows.sort()
    return [i for _, _, i in rows[:max_candidates]]


def test_select_candidates_by_hand():
    #            0         1         2          3          4           5
    start = np.array([100, 1_000, 5_000, 10_000, 150_000, 9_400])
    end = np.array([600, 1_500, 5_500, 10_500, 150_500, 9_900])
    order = np.argsort(start)
    start, end = start[order], end[order]
    tss = 10_000
    got = select_candidates(tss, start, end, max_distance=100_000, max_candidates=60, promoter_exclusion=500)
    chosen = [(int(start[i]), int(end[i])) for i in got]
    # [9400, 9900) overlaps [9500, 10500) and [10000, 10500) contains the TSS: both excluded;
    # [150000, 150500) is 140,250 bp away; the rest nearest first
    assert chosen == [(5_000, 5_500), (1_000, 1_500), (100, 600)]
    got = select_candidates(tss, start, end, max_distance=100_000, max_candidates=2, promoter_exclusion=500)
    assert [(int(start[i]), int(end[i])) for i in got] == [(5_000, 5_500), (1_000, 1_500)]
    # the distance bound is inclusive and measured from the midpoint
    got = select_candidates(tss, start, end, max_distance=9_650, max_candidates=60, promoter_exclusion=500)
    assert [(int(start[i]), int(end[i])) for i in got] == [(5_000, 5_500), (1_000, 1_500), (100, 600)]
    got = select_candidates(tss, start, end, max_distance=9_649, max_candidates=60, promoter_exclusion=500)
    assert [(int(start[i]), int(end[i])) for i in got] == [(5_000, 5_500), (1_000, 1_500)]


def test_select_candidates_ties_by_start():
    start = np.array([800, 1_300])
    end = np.array([1_000, 1_500])  # midpoints 900 and 1,400: both 250 bp from 1,150
    got = select_candidates(1_150, start, end, promoter_exclusion=0)
    assert list(got) == [0, 1]


def test_select_candidates_matches_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(0, 120))
        lengths = rng.integers(200, 3000, n)
        gaps = rng.integers(0, 5000, n)
        start = np.cumsum(gaps + np.r_[0, lengths[:-1]]) if n else np.zeros(0, dtype=np.int64)
        end = start + lengths
        tss = int(rng.integers(0, max(int(end.max()) if n else 1, 1)))
        args = (int(rng.integers(1_000, 200_000)), int(rng.integers(1, 70)), int(rng.integers(0, 1000)))
        got = select_candidates(tss, start, end, *args)
        assert list(got) == brute_force_selection(tss, start, end, *args)


def test_window_mean_zero_filled():
    start = np.array([10, 30])
    end = np.array([20, 40])
    value = np.array([2.0, 4.0])
    assert window_mean(start, end, value, 0, 50) == pytest.approx((10 * 2 + 10 * 4) / 50)
    assert window_mean(start, end, value, 15, 35) == pytest.approx((5 * 2 + 5 * 4) / 20)
    assert window_mean(start, end, value, 20, 30) == 0.0
    assert window_mean(start[:0], end[:0], value[:0], 0, 10) == 0.0
    with pytest.raises(ValueError):
        window_mean(start, end, value, 5, 5)


def test_powerlaw_contact_relative_and_absolute():
    d = np.array([0, 4_999, 5_000, 20_000, 100_000])
    rel = powerlaw_contact(d, GAMMA, 5000)
    np.testing.assert_allclose(rel[:3], 1.0)
    assert np.all(np.diff(rel[2:]) < 0)
    ref = powerlaw_reference(GAMMA, SCALE, 5000)
    absolute = np.exp(SCALE - GAMMA * np.log(np.maximum(d, 5000) + 1))
    np.testing.assert_allclose(rel * ref, absolute, rtol=1e-12)


def test_powerlaw_matches_abc_chr22_run(shared_data):
    """Our power law times ABC's reference equals the powerlaw_contact column of ABC's own run."""
    path = shared_data / "hg38/k562/abc_chr22/test_pred_df.tsv.gz"
    with gzip.open(path, "rt") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))[:500]
    d = np.array([float(r["distance"]) for r in rows])
    abc = np.array([float(r["powerlaw_contact"]) for r in rows])
    ours = powerlaw_contact(d, GAMMA, 5000) * powerlaw_reference(GAMMA, SCALE, 5000)
    np.testing.assert_allclose(ours, abc, rtol=1e-9)


def test_element_features_by_hand():
    f = element_features(2_500, 0.5, 4.0, 1.0)
    assert f.dtype == np.float32 and f.shape == (len(FEATURES),)
    np.testing.assert_allclose(
        f, [math.log(3.5), 0.5, math.log(3.0), math.log(5.0), math.log(2.0)], rtol=1e-6
    )
    # negative signals count as 0; batched
    g = element_features([0, 1000], [1.0, 1.0], [-1.0, 0.0], [3.0, 3.0])
    assert g.shape == (2, 5)
    np.testing.assert_array_equal(g[:, 2:4], 0.0)


@pytest.fixture(scope="module")
def config():
    return load_link_config()


@pytest.fixture(scope="module")
def genes(config):
    return read_genes(data_path(config, "genes_tss"), data_path(config, "split"))


@pytest.fixture(scope="module")
def dataset(config):
    arrays, summary = build_dataset(config)
    return arrays, summary


def test_genes_coordinates_and_split(genes):
    assert len(genes) == 18_377
    row = {e: i for i, e in enumerate(genes.ensid)}
    # ENSG00000186092 (OR4F5, +): GeneList.bed start 65,419; TSS1kb window 64,919-65,919
    g = row["ENSG00000186092"]
    assert (genes.chrom[g], genes.strand[g], genes.tss[g]) == ("chr1", "+", 65_419)
    # ENSG00000188976 (NOC2L, -): gene end 959,255 is the TSS
    g = row["ENSG00000188976"]
    assert (genes.strand[g], genes.tss[g]) == ("-", 959_255)
    # each gene is a test gene in exactly one of the 12 folds
    assert np.all((genes.split == SPLIT_CODES["test"]).sum(1) == 1)


def test_split_has_no_chromosome_leakage(genes):
    for k in range(12):
        parts = {
            name: set(genes.chrom[genes.split[:, k] == code].tolist()) for name, code in SPLIT_CODES.items()
        }
        assert parts["test"] and parts["valid"] and parts["train"]
        assert not parts["test"] & parts["train"], f"fold {k + 1}"
        assert not parts["test"] & parts["valid"], f"fold {k + 1}"
        assert not parts["valid"] & parts["train"], f"fold {k + 1}"


def test_expression_against_cage_by_brute_force(config, genes):
    expr = gene_expression(genes, data_path(config, "cage"), 500)
    peaks = []
    with gzip.open(data_path(config, "cage"), "rt") as fh:
        for line in fh:
            f = line.rstrip("\n").split("\t")
            peaks.append((f[0], f[5], int(f[9]), float(f[10])))
    rng = np.random.default_rng(3)
    with_peak = 0
    for g in rng.choice(len(genes), 150, replace=False):
        tpm = sum(
            p[3]
            for p in peaks
            if p[0] == genes.chrom[g]
            and p[1] == genes.strand[g]
            and genes.tss[g] - 500 <= p[2] < genes.tss[g] + 500
        )
        assert expr[g] == pytest.approx(math.log10(1 + tpm), abs=1e-6)
        with_peak += tpm > 0
    assert 30 < with_peak < 120


def test_dataset_candidates_nearest_first_within_100kb(config, dataset):
    data, summary = dataset
    feat = config["features"]
    idx = data["candidate_index"]
    assert idx.shape == (18_377, 60)
    n = (idx >= 0).sum(1)
    # padding only at the end
    assert np.all((idx >= 0) == (np.arange(60)[None, :] < n[:, None]))
    assert summary["candidates_per_gene"]["at_max"] > 0 and summary["candidates_per_gene"]["zero"] > 0
    rng = np.random.default_rng(5)
    cs, ce, cc = data["cand_start"], data["cand_end"], data["cand_chrom"]
    for g in rng.choice(len(idx), 300, replace=False):
        chrom, tss = data["chrom"][g], int(data["tss"][g])
        on = np.nonzero(cc == chrom)[0]
        expected = brute_force_selection(
            tss, cs[on], ce[on], feat["max_distance"], feat["max_candidates"], feat["promoter_exclusion"]
        )
        assert list(idx[g, : n[g]]) == list(on[expected])
        d = data["candidate_distance"][g, : n[g]]
        assert np.all(d <= 100_000) and np.all(np.diff(d) >= 0)
        np.testing.assert_array_equal(d, np.abs((cs[idx[g, : n[g]]] + ce[idx[g, : n[g]]]) // 2 - tss))


def test_dataset_candidate_coordinates_and_features(config, dataset):
    data, _ = dataset
    # candidate rows are the DHS bedgraph rows, in file order
    with gzip.open(data_path(config, "candidates"), "rt") as fh:
        rows = [line.split("\t")[:4] for _, line in zip(range(2000), fh, strict=False)]
    for i, (c, s, e, count) in enumerate(rows):
        assert (data["cand_chrom"][i], data["cand_start"][i], data["cand_end"][i]) == (c, int(s), int(e))
        assert data["cand_accessibility"][i] == pytest.approx(float(count) * 1000 / (int(e) - int(s)))
    # the track means equal what the demo bigWigs' headers would say: 1000 * total / covered bp
    length = (data["cand_end"] - data["cand_start"]).astype(float)
    total = np.sum(data["cand_accessibility"] * length / 1000)
    assert data["track_means"][0] == pytest.approx(1000 * total / length.sum())
    # features recomputed from the stored parts
    g = int(np.argmax((data["candidate_index"] >= 0).sum(1)))
    ci = data["candidate_index"][g]
    m = data["track_means"]
    f = element_features(
        data["candidate_distance"][g],
        data["candidate_contact"][g],
        data["cand_accessibility"][ci] / m[0],
        data["cand_h3k27ac"][ci] / m[1],
    )
    np.testing.assert_allclose(data["candidate_features"][g], f, rtol=1e-6)
    np.testing.assert_allclose(
        data["promoter_features"][:, :2], np.tile([0.0, 1.0], (len(data["tss"]), 1)).astype(np.float32)
    )


def test_dataset_contact_is_hic_only_on_chr22(dataset):
    data, summary = dataset
    hic = data["candidate_is_hic"]
    assert summary["pairs_with_hic"] == int(hic.sum()) > 0
    assert set(data["chrom"][np.nonzero(hic.any(1))[0]].tolist()) == {"chr22"}
    valid = data["candidate_index"] >= 0
    pl = powerlaw_contact(data["candidate_distance"], GAMMA, 5000)
    np.testing.assert_allclose(data["candidate_contact"][valid & ~hic], pl[valid & ~hic])


def test_dataset_sequence_windows_are_real(config, dataset):
    data, summary = dataset
    seqs = data["sequences"]
    assert summary["sequence"]["unique_windows"] == len(seqs) > 0
    fasta = encode.FastaReader(data_path(config, "fasta"))
    rng = np.random.default_rng(7)
    promoters = np.nonzero(data["promoter_sequence"] >= 0)[0]
    for g in rng.choice(promoters, 5, replace=False):
        tss = int(data["tss"][g])
        expected = fasta.fetch(str(data["chrom"][g]), tss - 1000, tss + 1000)
        assert bytes(seqs[data["promoter_sequence"][g]]) == expected
        assert encode.one_hot(expected).sum() >= 0.99 * 2000
    g, j = np.argwhere(data["candidate_sequence"] >= 0)[0]
    ci = data["candidate_index"][g, j]
    mid = (int(data["cand_start"][ci]) + int(data["cand_end"][ci])) // 2
    assert bytes(seqs[data["candidate_sequence"][g, j]]) == fasta.fetch(
        str(data["chrom"][g]), mid - 1000, mid + 1000
    )
    # most elements have no real sequence (partial genome)
    assert (
        summary["sequence"]["candidate_slots_with_sequence"]
        < 0.05 * summary["sequence"]["candidate_slots_total"]
    )


def test_crispri_pairs_map_to_gene_candidates(config, dataset):
    data, _ = dataset
    pairs = read_crispri(data_path(config, "crispri"), data, 100_000)
    assert len(pairs) > 1000 and 300 < pairs.regulated.sum() < 471
    assert pairs.dropped["benchmark_rows"] == 10_356
    assert np.all(pairs.distance <= 100_000)
    assert np.all(pairs.chrom == data["chrom"][pairs.gene])
    slots = pair_slots(pairs, data)
    covered = 0
    for p, sl in enumerate(slots):
        for s in sl:
            ci = data["candidate_index"][pairs.gene[p], s]
            assert ci >= 0
            assert data["cand_start"][ci] < pairs.end[p] and data["cand_end"][ci] > pairs.start[p]
        covered += len(sl) > 0
    assert covered > 0.5 * len(pairs)
