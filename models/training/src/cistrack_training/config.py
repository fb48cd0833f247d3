"""Run configuration: in-code defaults with JSON files merged over them.

A config file (``configs/*.json``) only needs the keys it changes; :func:`load_config` merges it
recursively over :data:`DEFAULTS`. Relative paths in a config (``data_dir``, ``runs_dir``) are taken
relative to ``models/training/``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

TRAINING_ROOT = Path(__file__).resolve().parents[2]
"""The ``models/training`` directory."""

DEFAULTS: dict = {
    "name": "enhancer-0.1.0",
    "seed": 20240,
    "data_dir": "../../../shared/data",
    "runs_dir": "runs",
    "data": {
        "fasta": "hg38/genome/hg38.partial.fa.gz",
        "loci": "hg38/genome/loci.bed",
        "jaspar": "motifs/JASPAR2024_CORE_vertebrates_nonredundant.jaspar",
    },
    "simulation": {
        "block_kind": "true_hg38",
        "max_n_fraction": 0.01,
        "split": {
            "train": ["chr2", "chr6", "chr21", "chrX"],
            "validation": ["chr17"],
            "test": ["chr22"],
        },
        "windows": {"train": 10000, "validation": 600, "test": 1200},
        "classes": {
            "background": 0.18,
            "enhancer": 0.4,
            "open_ctcf": 0.1,
            "acetylated_no_grammar": 0.2,
            "closed_motif_cluster": 0.12,
        },
        "reverse_complement": 0.5,
        "motifs": {
            "enhancer": ["MA0035.5", "MA0140.3", "MA0493.3", "MA0841.2", "MA0002.3", "MA0099.4"],
            "enhancer_weights": [0.3, 0.25, 0.15, 0.1, 0.1, 0.1],
            "ctcf": ["MA0139.2"],
            "decoy_exclude": "GATA|TAL|KLF|^SP[0-9]|NFE2|MAF|BACH|JUN|FOS|ATF|BATF|JDP|RUNX|CTCF|CREB|NRL",
            "pseudocount": 0.5,
            "sharpen": 1.5,
        },
        "grammar": {
            "sites": [3, 8],
            "core_width": 500,
            "centre_jitter": 50,
            "decoy_sites": [2, 5],
            "decoy_enhancer_site_probability": 0.5,
            "ctcf_sites": [1, 2],
        },
        "depth": 1.0,
        "h3k27ac": {
            "baseline": 0.6,
            "baseline_sigma": 0.3,
            "peak_height": 12.0,
            "peak_sigma": 0.6,
            "flank_offset": [200, 450],
            "flank_width": [80, 180],
            "unimodal_probability": 0.15,
            "unimodal_width": [180, 300],
        },
        "accessibility": {
            "baseline": 0.3,
            "baseline_sigma": 0.3,
            "peak_height": 15.0,
            "peak_sigma": 0.6,
            "peak_width": [40, 90],
        },
        "decoys": {
            "acetylated_accessibility_probability": 0.75,
            "ctcf_weak_h3k27ac_probability": 0.2,
            "closed_weak_accessibility_probability": 0.3,
            "weak_factor": 0.2,
            "off_centre_peak_probability": 0.35,
            "off_centre_offset": [650, 950],
            "off_centre_factor": 0.6,
        },
    },
    "motif_pretraining": {
        "steps": 4000,
        "batch_size": 32,
        "lr": 3.0e-3,
        "weight_decay": 0.01,
        "warmup_steps": 50,
        "min_lr_fraction": 0.05,
        "target_auroc": 0.9,
        "eval_every": 250,
        "target_classes": ["enhancer", "closed_motif_cluster"],
    },
    "teacher": {
        "model": {
            "d_model": 256,
            "heads": 8,
            "encoder_layers": 2,
            "dropout": 0.2,
            "stem_channels": 128,
            "stem_kernel": 15,
            "signal_channels": 64,
            "signal_kernel": 5,
            "ff_mult": 4,
            "encoder_pool": 4,
        },
        "epochs": 3,
        "batch_size": 32,
        "lr": 1.0e-3,
        "weight_decay": 0.01,
        "warmup_steps": 150,
        "min_lr_fraction": 0.05,
        "grad_clip": 1.0,
        "modality_dropout": 0.25,
        "coverage_fractions": [],
    },
    "student": {
        "model": {
            "d_model": 128,
            "heads": 4,
            "encoder_layers": 1,
            "dropout": 0.3,
            "stem_channels": 128,
            "stem_kernel": 15,
            "signal_channels": 64,
            "signal_kernel": 5,
            "ff_mult": 4,
            "encoder_pool": 4,
        },
        "epochs": 3,
        "batch_size": 32,
        "lr": 1.0e-3,
        "weight_decay": 0.01,
        "warmup_steps": 150,
        "min_lr_fraction": 0.05,
        "grad_clip": 1.0,
        "modality_dropout": 0.25,
        "temperature": 4.0,
        "alpha_start": 0.1,
        "alpha_end": 1.0,
        "downsampled_fraction": 0.7,
        "coverage_fractions": [0.5, 0.25, 0.1, 0.05, 0.01],
    },
    "evaluation": {
        "coverage_levels": [1.0, 0.5, 0.25, 0.1, 0.05, 0.01],
        "threshold": 0.5,
        "ece_bins": 15,
        "batch_size": 64,
    },
    "progress_every": 25,
}


def merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` over a deep copy of ``base``.

    Parameters
    ----------
    base : dict
        Defaults.
    override : dict
        Values to set; nested dicts are merged, every other value replaces the default.

    Returns
    -------
    dict
        The merged configuration.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(
    path: str | Path | None = None, overrides: dict | None = None, defaults: dict | None = None
) -> dict:
    """Load a run configuration.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        JSON file merged over the defaults.
    overrides : dict, optional
        Merged last (e.g. from the command line).
    defaults : dict, optional
        In-code defaults; :data:`DEFAULTS` (the enhancer models') when not given. The link model
        passes :data:`cistrack_training.link_config.LINK_DEFAULTS`.

    Returns
    -------
    dict
        The configuration, with ``config_path`` set to the file name relative to
        ``models/training`` when possible.
    """
    config = copy.deepcopy(DEFAULTS if defaults is None else defaults)
    if path is not None:
        path = Path(path)
        with open(path) as fh:
            config = merge(config, json.load(fh))
        try:
            config["config_path"] = str(path.resolve().relative_to(TRAINING_ROOT))
        except ValueError:
            config["config_path"] = str(path)
    if overrides:
        config = merge(config, overrides)
    return config


def resolve(path: str | Path) -> Path:
    """Resolve a config path relative to ``models/training``."""
    p = Path(path)
    return p if p.is_absolute() else (TRAINING_ROOT / p).resolve()


def data_path(config: dict, key: str) -> Path:
    """Absolute path of ``config["data"][key]`` under ``config["data_dir"]``."""
    p = Path(config["data"][key])
    return p if p.is_absolute() else resolve(config["data_dir"]) / p


def pin_run_config(run_dir: Path, config: dict) -> None:
    """Tie a run directory to one configuration.

    The first invocation writes ``run_dir/config.json``; later ones (``--resume``, single stages)
    must pass the same configuration, ``config_path`` aside, or stop with a message. Only the
    ``evaluation`` section may change (it does not touch what was trained): the saved config
    then takes the new one, so it always says how ``metrics.json`` was made.
    """
    saved = Path(run_dir) / "config.json"
    ignored = ("config_path", "evaluation")
    if saved.exists():
        previous = json.loads(saved.read_text())
        if {k: v for k, v in previous.items() if k not in ignored} != {
            k: v for k, v in config.items() if k not in ignored
        }:
            raise SystemExit(f"{saved} differs from the given config; use a new name or run dir")
        if previous.get("evaluation") == config.get("evaluation"):
            return
    saved.write_text(json.dumps(config, indent=2) + "\n")
