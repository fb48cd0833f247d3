import math
import struct

import numpy as np
import pytest

from cistrack_training import encode


def test_one_hot_bases_case_and_others():
    x = encode.one_hot(b"ACGTacgtNnRYKM-.")
    assert x.dtype == np.uint8
    assert x.shape == (4, 16)
    expected = np.zeros((4, 16), dtype=np.uint8)
    for i in range(4):
        expected[i, i] = 1
        expected[i, i + 4] = 1
    np.testing.assert_array_equal(x, expected)


def test_one_hot_accepts_str():
    np.testing.assert_array_equal(encode.one_hot("gT"), encode.one_hot(b"GT"))


def test_bin_means_zero_filled_by_hand():
    v = np.zeros(30)
    v[0:10] = 1.0
    v[10:15] = np.nan
    v[15:20] = 4.0
    v[20] = 7.5
    bins = encode.bin_means(v)
    assert bins.dtype == np.float64
    np.testing.assert_array_equal(bins, [1.0, 2.0, 0.75])


def test_bin_means_batched_and_length_check():
    v = np.arange(40, dtype=np.float64).reshape(2, 20)
    np.testing.assert_array_equal(encode.bin_means(v), [[4.5, 14.5], [24.5, 34.5]])
    with pytest.raises(ValueError):
        encode.bin_means(np.zeros(15))


def test_normalise_by_hand():
    bins = np.array([-1.0, 0.0, 2.0, 1e9])
    x = encode.normalise(bins, 2.0)
    assert x.dtype == np.float32
    expected = np.array([0.0, 0.0, math.log1p(1.0), 8.0], dtype=np.float32)
    np.testing.assert_array_equal(x, expected)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            encode.normalise(bins, bad)


@pytest.mark.parametrize("name", ["h3k27ac.bw", "accessibility.bw"])
def test_track_scale_matches_interval_mean(fixture_toml, name):
    import pyBigWig

    path = fixture_toml.parent / "fixture" / name
    bw = pyBigWig.open(str(path))
    total, covered = 0.0, 0
    for chrom in bw.chroms():
        for s, e, v in bw.intervals(chrom) or ():
            total += float(v) * (e - s)
            covered += e - s
    summary = encode.read_total_summary(path)
    assert summary.bases_covered == covered
    # the writer accumulates sumData with its own rounding: agree to ~1e-8, not bit for bit
    assert encode.track_scale(path) == pytest.approx(total / covered, rel=1e-6)
    # pyBigWig's header rounds sumData to an integer; ours keeps the fraction
    assert bw.header()["sumData"] == int(summary.sum_data)


def test_read_total_summary_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.bw"
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="magic"):
        encode.read_total_summary(bad)
    no_summary = tmp_path / "nosummary.bw"
    header = bytearray(64)
    struct.pack_into("<I", header, 0, encode.BIGWIG_MAGIC)
    no_summary.write_bytes(bytes(header))
    with pytest.raises(ValueError, match="no total summary"):
        encode.track_scale(no_summary)


def test_fasta_edge_padding(fixture_toml):
    build = encode.Build.from_toml(fixture_toml)
    fasta = build.fasta
    assert fasta.lengths == {"chr1": 60000, "chr2": 40000}
    inner = fasta.fetch("chr1", 0, 5)
    assert fasta.fetch("chr1", -5, 5) == b"NNNNN" + inner
    tail = fasta.fetch("chr1", 59995, 60000)
    assert fasta.fetch("chr1", 59995, 60010) == tail + b"N" * 10
    assert fasta.fetch("chr1", 60000, 60003) == b"NNN"
    assert set(fasta.fetch("chr2", 22000, 25000)) == {ord("N")}
    with pytest.raises(KeyError):
        fasta.fetch("chr3", 0, 10)


def test_build_aliases_and_window_encoding(fixture_toml):
    build = encode.Build.from_toml(fixture_toml)
    assert build.aliases == {"1": "chr1", "2": "chr2"}
    acc = build.signals["accessibility"]
    assert acc.bigwig_name("chr1") == "1"
    # accessibility peak on contig "1" at [12712, 13262) with value 341.818...
    x = build.encode_window("chr1", 12000)
    assert x["sequence"].shape == (4, 2000) and x["sequence"].dtype == np.uint8
    assert x["h3k27ac"].shape == (200,) and x["h3k27ac"].dtype == np.float32
    value = 341.81817626953125
    b = (12720 - 12000) // 10
    assert x["accessibility"][b] == np.float32(min(math.log1p(value / acc.scale), 8.0))
    # a bin half covered: [12710, 12720) has 8 covered bases
    b = (12710 - 12000) // 10
    assert x["accessibility"][b] == np.float32(math.log1p(value * 8 / 10 / acc.scale))
    # alias as contig name gives the same encoding
    y = build.encode_window("1", 12000)
    for k in x:
        np.testing.assert_array_equal(x[k], y[k])


def test_window_past_contig_ends(fixture_toml):
    build = encode.Build.from_toml(fixture_toml)
    x = build.encode_window("chr2", 39000)
    assert x["sequence"][:, 1000:].sum() == 0
    assert np.all(x["h3k27ac"][100:] == 0)
    y = build.encode_window("chr2", -1500)
    assert y["sequence"][:, :1500].sum() == 0
    assert np.all(y["h3k27ac"][:150] == 0)
    assert np.any(y["h3k27ac"][150:] > 0)
    inside = build.encode_window("chr2", 0)
    np.testing.assert_array_equal(y["h3k27ac"][150:], inside["h3k27ac"][:50])


def test_masked_modalities_are_zero(fixture_toml):
    build = encode.Build.from_toml(fixture_toml)
    x = build.encode_window("chr1", 12000, (0, 1, 0))
    assert x["sequence"].sum() == 0
    assert np.all(x["accessibility"] == 0)
    assert np.any(x["h3k27ac"] > 0)
    np.testing.assert_array_equal(x["modality_mask"], np.array([0, 1, 0], dtype=np.float32))


def test_n_stretch_is_zero_sequence(fixture_toml):
    build = encode.Build.from_toml(fixture_toml)
    x = build.encode_window("chr2", 22500)
    assert x["sequence"].sum() == 0
    # signal continues over the N stretch on chr2
    assert np.any(x["h3k27ac"] > 0)
