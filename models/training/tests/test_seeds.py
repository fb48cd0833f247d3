"""The distillation table over seeds (numpy only)."""

import math

from cistrack_training import seeds


def run(student, scratch, student_10, scratch_10):
    def model(full, ten):
        return {"full": {"auroc": full}, "coverage": {"10%": {"auroc": {"mean": ten, "sd": 0.0}}}}

    return {
        "test": {
            "k562_signal": {
                "models": {"student": model(student, student_10), "scratch": model(scratch, scratch_10)}
            }
        }
    }


def test_verdict_needs_one_sign_and_a_mean_beyond_its_spread():
    assert seeds.verdict([0.90, 0.91, 0.92], [0.85, 0.86, 0.86])[2] == "KD better"
    assert seeds.verdict([0.80, 0.81, 0.80], [0.85, 0.86, 0.86])[2] == "scratch better"
    # mixed signs
    assert seeds.verdict([0.90, 0.84, 0.92], [0.85, 0.86, 0.86])[2] == "within the seed spread"
    # one sign, but a mean smaller than the s.d. of the differences cannot happen with one sign
    # and n = 3 unless the differences are spread: 0.001, 0.001, 0.05
    mean, sd, word = seeds.verdict([0.851, 0.851, 0.9], [0.85, 0.85, 0.85])
    assert word == "within the seed spread" and abs(mean) <= sd
    mean, sd, word = seeds.verdict([0.9], [0.8])
    assert word == "within the seed spread" and math.isnan(sd)


def test_table_pairs_seeds_per_source_and_level():
    runs = [run(0.90, 0.85, 0.80, 0.81), run(0.91, 0.86, 0.79, 0.82), run(0.92, 0.86, 0.81, 0.80)]
    text = seeds.table(runs)
    assert "AUROC, mean ± s.d. over 3 training seeds." in text
    assert "| 100% | 0.910 ± 0.010 | 0.857 ± 0.006 | +0.053 ± 0.006 | KD better |" in text
    assert "| 10% | 0.800 ± 0.010 | 0.810 ± 0.010 | -0.010 ± 0.020 | within the seed spread |" in text
