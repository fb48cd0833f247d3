import numpy as np
import pytest

from cistrack_training import encode, simulate
from cistrack_training.config import DEFAULTS, data_path, load_config, merge


@pytest.fixture(scope="module")
def small_sets():
    config = load_config()
    sim = simulate.Simulator(config)
    return config, sim, {s: sim.generate(s, n=60) for s in ("train", "validation", "test")}


def test_split_chromosomes_disjoint():
    split = DEFAULTS["simulation"]["split"]
    seen = set()
    for chroms in split.values():
        assert not seen & set(chroms)
        seen |= set(chroms)


def test_overlapping_split_is_rejected(shared_data):
    config = merge(load_config(), {"simulation": {"split": {"validation": ["chr17", "chr2"]}}})
    with pytest.raises(ValueError, match="share chromosomes"):
        simulate.Simulator(config).generate("train", n=2)


def test_windows_inside_true_hg38_blocks(shared_data, small_sets):
    config, _, sets = small_sets
    loci = data_path(config, "loci")
    for split, data in sets.items():
        blocks = simulate.read_blocks(loci, data.chromosomes, "true_hg38")
        assert set(data.chrom) <= set(config["simulation"]["split"][split])
        for chrom, start0 in zip(data.chrom, data.start0, strict=True):
            assert any(c == chrom and s <= start0 and start0 + 2000 <= e for c, s, e in blocks)
        # at most 1% non-ACGT
        acgt = encode._ONE_HOT[data.sequence].sum(axis=(1, 2))
        assert np.all(acgt >= 0.99 * 2000)


def test_labels_classes_and_planted_sites(shared_data, small_sets):
    config, sim, sets = small_sets
    data = sets["train"]
    assert set(np.unique(data.label)) <= {0.0, 1.0}
    np.testing.assert_array_equal(data.label == 1, data.klass == simulate.ENHANCER)
    enhancer_ids = set(config["simulation"]["motifs"]["enhancer"])
    lo_sites, hi_sites = config["simulation"]["grammar"]["sites"]
    for w in np.nonzero(data.klass == simulate.ENHANCER)[0]:
        rows = data.sites[data.sites[:, 0] == w]
        assert lo_sites <= len(rows) <= hi_sites
        assert {data.motif_ids[m] for m in rows[:, 1]} <= enhancer_ids
        for _, m, pos, strand, length in rows:
            assert 1000 - 250 - 50 <= pos and pos + length <= 1000 + 250 + 50
            site = bytes(data.sequence[w, pos : pos + length])
            if strand < 0:
                site = simulate.reverse_complement(site)
            # a sampled site scores far above a uniform background under its own matrix
            p = sim.motifs[m].probabilities
            score = sum(np.log(p[i, "ACGT".index(chr(b))] / 0.25) for i, b in enumerate(site))
            assert score > 0
    for w in np.nonzero(data.klass == simulate.CLASSES.index("background"))[0]:
        assert not np.any(data.sites[:, 0] == w)


def test_plant_sites_writes_consensus():
    motif = simulate.Motif("X", "X", np.eye(4)[[0, 1, 2, 3, 3]])  # ACGTT, deterministic
    buf = bytearray(b"N" * 2000)
    rng = np.random.default_rng(1)
    planted = simulate.plant_sites(buf, [0, 0], [motif], 900, 1100, rng, 1.0, [])
    assert len(planted) == 2
    for _, pos, strand in planted:
        site = bytes(buf[pos : pos + 5])
        assert site == (b"ACGTT" if strand > 0 else simulate.reverse_complement(b"ACGTT"))
    assert buf.count(b"N") == 2000 - 10
    (a, b) = sorted(p for _, p, _ in planted)
    assert b >= a + 5 + 2


def test_read_jaspar(shared_data):
    motifs = simulate.read_jaspar(shared_data / "motifs" / "JASPAR2024_CORE_vertebrates_nonredundant.jaspar")
    assert len(motifs) == 879
    gata1 = motifs["MA0035.5"]
    assert gata1.name == "GATA1" and len(gata1) == 7
    np.testing.assert_allclose(gata1.probabilities.sum(1), 1.0)


def test_thinning_and_scale():
    rng = np.random.default_rng(0)
    counts = np.full((4, 2, 2000), 10, dtype=np.uint16)
    assert simulate.thin(counts, 1.0, rng) is counts
    thinned = simulate.thin(counts, 0.1, rng)
    assert thinned.dtype == counts.dtype
    assert abs(thinned.mean() - 1.0) < 0.05
    c = np.array([0, 0, 2, 6])
    assert simulate.coverage_scale(c, 1.0) == pytest.approx(4.0)
    # E[sum] = 0.5 * 8; E[covered] = (1 - 0.5^2) + (1 - 0.5^6)
    assert simulate.coverage_scale(c, 0.5) == pytest.approx(4.0 / (0.75 + 1 - 0.5**6))


def test_encode_counts_uses_reference_encoding():
    rng = np.random.default_rng(3)
    counts = rng.poisson(3.0, size=(2, 2, 2000)).astype(np.uint16)
    out = simulate.encode_counts(counts, np.array([2.0, 3.0]))
    assert out.shape == (2, 2, 200) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1, 1], encode.normalise(encode.bin_means(counts[1, 1]), 3.0))


def test_generation_is_seeded(shared_data):
    sim = simulate.Simulator(load_config())
    a = sim.generate("test", n=5, seed=11)
    b = sim.generate("test", n=5, seed=11)
    np.testing.assert_array_equal(a.sequence, b.sequence)
    np.testing.assert_array_equal(a.counts, b.counts)
