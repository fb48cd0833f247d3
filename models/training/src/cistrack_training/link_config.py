"""In-code defaults of the enhancer-gene link model pipeline (``configs/link-*.json`` merge over them).

Load a run configuration with ``config.load_config(path, defaults=LINK_DEFAULTS)``. Relative
paths (``data_dir``, ``runs_dir``) are taken relative to ``models/training/``; the ``data`` paths
are relative to ``data_dir`` (the shared real-data folder, ``../shared/data`` from the repository).
"""

from __future__ import annotations

from pathlib import Path

from .config import load_config

LINK_DEFAULTS: dict = {
    "name": "link-0.1.0",
    "seed": 20251,
    "data_dir": "../../../shared/data",
    "runs_dir": "runs",
    "data": {
        "genes_tss": "hg38/k562/candidates/GeneList.TSS1kb.bed.gz",
        "split": "hg38/k562/genes/leave_chrom_out_crossvalidation_split_18377genes.csv.gz",
        "candidates": "hg38/k562/candidates/Enhancers.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz",
        "accessibility": ["hg38/k562/candidates/Enhancers.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz"],
        "h3k27ac": [
            "hg38/k562/candidates/Enhancers.H3K27ac.ENCFF232RQF.bam.CountReads.bedgraph.gz",
            "hg38/k562/candidates/Enhancers.H3K27ac.ENCFF600THN.bam.CountReads.bedgraph.gz",
            "hg38/k562/candidates/Enhancers.H3K27ac.ENCFF704LGA.bam.CountReads.bedgraph.gz",
        ],
        "cage": "hg38/k562/expression/K562-CAGE-Peaks.TPM-1.bed.gz",
        "crispri": "hg38/k562/crispri/EPCrisprBenchmark_combined_data.training_K562.GRCh38.tsv.gz",
        "fasta": "hg38/genome/hg38.partial.fa.gz",
        "loci": "hg38/genome/loci.bed",
        "hic": [
            "hg38/k562/abc_chr22/test_pred_df.tsv.gz",
            "hg38/k562/abc_chr22/Predictions/EnhancerPredictionsAllPutative.ForVariantOverlap.shrunk150bp.tsv.gz",
        ],
    },
    "features": {
        "max_distance": 100_000,
        "max_candidates": 60,
        "promoter_exclusion": 500,
        "promoter_window": 500,
        "expression_window": 500,
        "sequence_length": 2000,
        "max_n_fraction": 0.01,
        "sequence_blocks": ["true_hg38", "lifted_hg19"],
        "use_sequence": True,
        "use_hic": True,
        "hic_resolution": 5000,
        "powerlaw": {"gamma": 1.024238616787792, "scale": 5.9594510043736655, "min_distance": 5000},
    },
    "model": {
        "d_model": 64,
        "heads": 4,
        "layers": 3,
        "ff_mult": 2,
        "dropout": 0.1,
        "features": 5,
        "encoder_channels": 64,
        "encoder_stem_kernel": 15,
        "encoder_pool": 10,
        "encoder_dilations": [1, 2, 4, 8],
    },
    "training": {
        "folds": list(range(1, 13)),
        "epochs": 12,
        "batch_size": 64,
        "lr": 1.0e-3,
        "weight_decay": 0.01,
        "warmup_steps": 100,
        "min_lr_fraction": 0.05,
        "grad_clip": 1.0,
        "sequence_dropout": 0.3,
        "max_train_genes": 0,
        "threads": 1,
    },
    "evaluation": {
        "distance_bins": [[0, 10_000], [10_000, 60_000], [60_000, 100_000]],
        "recall": 0.7,
        "batch_size": 64,
    },
    "export": {"fold": 11, "golden_genes": 24, "out": None},
    "progress_every": 50,
}


def load_link_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Load a link-model run configuration (JSON merged over :data:`LINK_DEFAULTS`)."""
    return load_config(path, overrides, defaults=LINK_DEFAULTS)
