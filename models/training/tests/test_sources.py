"""The labelled sources of the enhancer models: coordinates, splits, labels, signals (numpy only)."""

import gzip
import json

import numpy as np
import pytest

from cistrack_training import encode, sources
from cistrack_training.config import data_path, merge

SMALL = {
    "sources": {
        "windows": {"simulated": {"train": 8, "validation": 4, "test": 4}},
        "ienhancer": {"max_windows": {"train": 40, "validation": 20, "test": 20}},
        "k562": {
            "windows": {
                "k562_sequence": {"train": 30, "validation": 20, "test": 30},
                "k562_signal": {"train": 40, "validation": 20, "test": 20},
            },
            "background_windows": {"train": 6, "validation": 3, "test": 4},
        },
    }
}


@pytest.fixture(scope="module")
def config():
    return merge(sources.defaults(), SMALL)


@pytest.fixture(scope="module")
def k562_sets(config):
    return sources.k562(config)


@pytest.fixture(scope="module")
def candidates(config):
    return sources.read_candidates(config)


def test_default_split_is_disjoint_and_matches_the_simulator():
    d = sources.defaults()
    sources.check_split(d["sources"]["split"])
    for split, chroms in d["simulation"]["split"].items():
        assert all(sources.split_of(c, d["sources"]["split"]) == split for c in chroms)


def test_overlapping_split_is_rejected():
    with pytest.raises(ValueError, match="CHR9 is in both train and test"):
        sources.check_split({"train": ["chr9", "chr2"], "test": ["CHR9"]})
    assert sources.split_of("CHRX", {"test": ["chrX"]}) == "test"
    assert sources.split_of("chrY", {"test": ["chrX"]}) is None


def test_ienhancer_header():
    assert sources.parse_ienhancer_header("CHR12_5943000_5943200") == ("chr12", 5943000, 5943200)
    with pytest.raises(ValueError, match="unexpected iEnhancer header"):
        sources.parse_ienhancer_header("chr1:5-10")


def test_ienhancer_windows_hold_the_record_at_the_centre(shared_data, config):
    sets = sources.ienhancer(config)
    records = {}
    for key in ("ienhancer_enhancers", "ienhancer_non_enhancers"):
        for header, seq in sources.read_fasta_gz(data_path(config, key)):
            records[sources.parse_ienhancer_header(header)] = (seq, key == "ienhancer_enhancers")
    assert len(records) == 2968
    seen = set()
    for split, d in sets.items():
        assert len(d) == SMALL["sources"]["ienhancer"]["max_windows"][split]
        assert set(d.label) == {0.0, 1.0}
        np.testing.assert_array_equal(d.available, np.tile([1, 0, 0], (len(d), 1)))
        assert not d.counts.any()
        for i in range(len(d)):
            chrom = d.chrom[i]
            assert sources.split_of(chrom, config["sources"]["split"]) == split
            start0 = int(d.start0[i]) + 900
            seq, is_enhancer = records[(chrom, start0, start0 + 200)]
            assert bytes(d.sequence[i, 900:1100]) == seq
            assert set(bytes(d.sequence[i, :900])) == {ord("N")}
            assert set(bytes(d.sequence[i, 1100:])) == {ord("N")}
            assert d.label[i] == float(is_enhancer)
            seen.add((chrom, start0))
    assert len(seen) == sum(len(d) for d in sets.values())


def test_candidate_labels(shared_data, config, candidates):
    c = candidates
    assert len(c.chrom) == 116_669
    # a promoter candidate overlaps an ABC TSS +-250 bp window; checked against the file directly
    tss = sources.read_bed_intervals(data_path(config, "k562_tss500"))
    rng = np.random.default_rng(0)
    for i in rng.choice(len(c.chrom), 300, replace=False):
        s, e = tss.get(c.chrom[i], (np.array([]), np.array([])))
        assert bool(np.any((s < c.end[i]) & (e > c.start[i]))) == bool(c.promoter[i])
    distal = ~c.promoter
    active = c.klass == sources.K562_CLASSES.index("active_distal")
    assert not np.any(active & c.promoter)
    assert abs(active.sum() / distal.sum() - 0.25) < 0.001
    # activity uses the label replicates, not the input replicate
    assert c.h3k27ac_label.shape == (116_669, 2)
    assert not np.array_equal(c.h3k27ac_label[:, 0], c.h3k27ac_input)
    assert c.activity[active].min() >= c.activity[distal & ~active].max()


def test_place_reads_keeps_every_read_of_a_contained_candidate(shared_data, candidates):
    c = candidates
    # the first candidate fully inside a 2,000-bp window centred on it
    j = int(np.where((c.end - c.start) <= 1500)[0][0])
    start0 = int((c.start[j] + c.end[j]) // 2 - 1000)
    reads = sources.place_reads(c, np.array([j]), start0, np.random.default_rng(1))
    assert reads.dtype == np.uint16
    assert reads[0].sum() == round(c.h3k27ac_input[j]) and reads[1].sum() == round(c.dnase[j])
    lo, hi = int(c.start[j]) - start0, int(c.end[j]) - start0
    assert not reads[:, :lo].any() and not reads[:, hi:].any()


def test_k562_windows(shared_data, config, k562_sets, candidates):
    c = candidates
    fasta = encode.FastaReader(data_path(config, "fasta"))
    split = config["sources"]["split"]
    windows = {}
    for source, per in k562_sets.items():
        for s, d in per.items():
            assert d.scale_mode == "density"
            np.testing.assert_allclose(d.track_scale, sources.density_scale(c))
            assert d.classes == list(sources.K562_CLASSES)
            np.testing.assert_array_equal(d.label, d.klass == 0)
            for i in range(len(d)):
                chrom, w = str(d.chrom[i]), int(d.start0[i])
                assert sources.split_of(chrom, split) == s
                windows.setdefault((chrom, w), set()).add(s)
                sel = (c.chrom == chrom) & (c.start < w + 2000) & (c.end > w)
                if d.klass[i] == sources.K562_CLASSES.index("background"):
                    assert not sel.any() and not d.counts[i].any()
                else:
                    assert sel.any()
                    # every read in the window comes from a candidate overlapping it
                    covered = np.zeros(2000, dtype=bool)
                    for j in np.where(sel)[0]:
                        covered[max(c.start[j] - w, 0) : min(c.end[j] - w, 2000)] = True
                    assert not d.counts[i][:, ~covered].any()
                if source == "k562_sequence":
                    assert d.available[i].tolist() == [1, 1, 1]
                    assert bytes(d.sequence[i]) == fasta.fetch(chrom, w, w + 2000)
                else:
                    assert d.available[i].tolist() == [0, 1, 1]
                    assert set(bytes(d.sequence[i])) == {ord("N")}
    assert all(len(v) == 1 for v in windows.values())
    # training windows are class-balanced as configured
    train = k562_sets["k562_signal"]["train"]
    assert np.sum(train.klass == 0) == round(40 * 0.45)


def test_mixed_signals_follow_the_reference_encoding(shared_data, k562_sets):
    d = k562_sets["k562_sequence"]["test"]
    m = sources.Mixed([d])
    expected = np.stack(
        [
            encode.normalise(encode.bin_means(d.counts[:, t].astype(np.float64)), d.track_scale[t])
            for t in range(2)
        ],
        axis=1,
    )
    np.testing.assert_array_equal(m.full, expected)
    idx = np.arange(len(d))
    np.testing.assert_array_equal(m.signals(idx, np.ones(len(d)), None), m.full)
    np.testing.assert_allclose(d.scales(0.1), d.track_scale * 0.1)
    # thinning keeps each read with probability f (binomial), so totals shrink by about f
    rng = np.random.default_rng(3)
    total = d.counts.astype(np.int64).sum()
    kept = sum(sources.thin(d.counts, 0.25, rng).astype(np.int64).sum() for _ in range(5)) / 5
    assert abs(kept / total - 0.25) < 0.02
    low = m.signals(idx, np.full(len(d), 0.01), np.random.default_rng(4))
    assert low.shape == m.full.shape and np.all(np.isfinite(low)) and np.all(low <= encode.CLIP_MAX)


def test_mixed_keeps_each_source_scale(shared_data, config, k562_sets):
    sim = sources.simulated(config, "test")
    k = k562_sets["k562_signal"]["test"]
    m = sources.Mixed([sim, k])
    np.testing.assert_array_equal(m.full[: len(sim)], sources.Mixed([sim]).full)
    np.testing.assert_array_equal(m.full[len(sim) :], sources.Mixed([k]).full)
    assert m.source.tolist() == [0] * len(sim) + [1] * len(k)


def test_build_writes_and_reloads(shared_data, config, tmp_path):
    cfg = merge(config, {"sources": {"use": ["ienhancer", "simulated"]}})
    built = sources.build(cfg, tmp_path, log=lambda _: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{src}-{s}.npz" for src in ("ienhancer", "simulated") for s in sources.SPLITS
    )
    again = sources.build(cfg, tmp_path, log=lambda _: None)
    for src in built:
        for s in sources.SPLITS:
            np.testing.assert_array_equal(built[src][s].sequence, again[src][s].sequence)
            np.testing.assert_array_equal(built[src][s].counts, again[src][s].counts)
    info = sources.describe(again)
    assert info["ienhancer"]["test"]["modalities_available"] == [1.0, 0.0, 0.0]


def test_truncated_counts_file_is_reported(tmp_path):
    bad = tmp_path / "bad.bedgraph.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("chr1\t10\t20\t5\nchr1\t30\n")
    with pytest.raises(ValueError, match="bad.bedgraph.gz:2"):
        sources._read_counts(bad)


def test_a_run_directory_keeps_its_config(tmp_path):
    from cistrack_training.config import pin_run_config

    config = {"name": "x", "seed": 1, "config_path": "configs/a.json"}
    pin_run_config(tmp_path, config)
    assert (tmp_path / "config.json").exists()
    pin_run_config(tmp_path, {**config, "config_path": "elsewhere/a.json"})
    with pytest.raises(SystemExit, match="config.json differs from the given config"):
        pin_run_config(tmp_path, {**config, "seed": 2})
    # another evaluation is allowed, and the saved config then says which one metrics.json used
    pin_run_config(tmp_path, {**config, "evaluation": {"calibration": "auto"}})
    assert json.loads((tmp_path / "config.json").read_text())["evaluation"] == {"calibration": "auto"}


def test_ienhancer_record_of_the_wrong_length_is_named(tmp_path, config):
    bad = tmp_path / "enh.fa.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write(">CHR2_100_300\nACGT\n")
    cfg = merge(config, {"data": {"ienhancer_enhancers": str(bad)}})
    with pytest.raises(ValueError, match="enh.fa.gz: CHR2_100_300 spans 200 bp but has 4 bases"):
        sources.ienhancer(cfg)
