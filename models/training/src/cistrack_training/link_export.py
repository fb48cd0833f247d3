"""Export the link model as two ONNX graphs with ``model.json`` and golden files (``models/CONTRACT.md``).

Usage (from ``models/training``)::

    python -m cistrack_training.link_export --config configs/link-0.1.0.json

Writes ``models/link-epinformer/<version>/``:

* ``encoder.onnx``: ``sequence [elements, 4, 2000]`` -> ``embedding [elements, 64]`` (the
  per-element sequence encoder, so the daemon can cache embeddings);
* ``predictor.onnx``: the per-gene fusion and interaction part, dynamic ``genes`` and
  ``candidates``: ``promoter_embedding [genes, 64]``, ``promoter_sequence_mask [genes]``,
  ``promoter_features [genes, 5]``, ``candidate_embedding [genes, candidates, 64]``,
  ``candidate_sequence_mask [genes, candidates]``, ``candidate_features [genes, candidates, 5]``,
  ``candidate_mask [genes, candidates]`` -> ``expression [genes]``, ``attention [genes, candidates]``;
* ``golden/``: real held-out genes of the exported fold (their windows, features and PyTorch
  outputs), including a gene with no candidate (all padding);
* ``model.json``: the sidecar, with the sha256 of both graphs and the held-out metrics of
  ``runs/<name>/eval/metrics.json``.

Both graphs come from ``torch.onnx.export(..., dynamo=True, opset_version=18,
external_data=False)``. ONNX Runtime is checked against PyTorch on the golden inputs at batch
sizes 1, 7 and all, with extra candidate padding, and on the all-padding gene; any difference
above ``atol = 1e-4`` (or a non-finite output) fails the export.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from .config import TRAINING_ROOT, resolve
from .export import machine_description, ort_session, sha256
from .link_config import load_link_config
from .link_data import FEATURES, dataset_path, load_dataset, log
from .link_eval import json_safe
from .link_model import (
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    PREDICTOR_INPUTS,
    PREDICTOR_OUTPUTS,
    LinkNetwork,
    encoder_flops,
    example_predictor_inputs,
    parameter_count,
)
from .link_train import fold_rows, load_network

ATOL = 1e-4
NAME = "link-epinformer"
MODELS_ROOT = TRAINING_ROOT.parent
PARITY_BATCH_SIZES = (1, 7)


def predictor_shapes(d_model: int, features: int) -> dict[str, list]:
    """Declared shape of every predictor input and output (names are dynamic dimensions)."""
    return {
        "promoter_embedding": ["genes", d_model],
        "promoter_sequence_mask": ["genes"],
        "promoter_features": ["genes", features],
        "candidate_embedding": ["genes", "candidates", d_model],
        "candidate_sequence_mask": ["genes", "candidates"],
        "candidate_features": ["genes", "candidates", features],
        "candidate_mask": ["genes", "candidates"],
        "expression": ["genes"],
        "attention": ["genes", "candidates"],
    }


def encoder_shapes(d_model: int, length: int) -> dict[str, list]:
    """Declared shape of the encoder's input and output."""
    return {"sequence": ["elements", 4, length], "embedding": ["elements", d_model]}


def _rename_dims(proto, anchors: dict[tuple[str, int], str], expected: dict[str, list]) -> None:
    """Rename the exporter's symbolic dimensions and check every input/output shape."""
    values = {v.name: v for v in [*proto.graph.input, *proto.graph.output]}
    mapping = {}
    for (name, axis), new in anchors.items():
        old = values[name].type.tensor_type.shape.dim[axis].dim_param
        if not old:
            raise RuntimeError(f"{name} axis {axis} is not dynamic after export")
        mapping[old] = new
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in mapping:
                dim.dim_param = mapping[dim.dim_param]
    for name, shape in expected.items():
        dims = values[name].type.tensor_type.shape.dim
        got = [d.dim_param if d.dim_param else d.dim_value for d in dims]
        if got != shape:
            raise RuntimeError(f"{name}: exported shape {got}, expected {shape}")


def export_graph(
    module: torch.nn.Module,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_shapes: dict,
    anchors: dict[tuple[str, int], str],
    expected: dict[str, list],
    metadata: dict[str, str],
) -> None:
    """Export one graph (opset 18, one file), name its dynamic dimensions, add metadata."""
    import onnx

    module = module.cpu().eval()
    program = torch.onnx.export(
        module,
        args,
        dynamo=True,
        opset_version=18,
        input_names=input_names,
        output_names=output_names,
        dynamic_shapes=dynamic_shapes,
        external_data=False,
    )
    proto = program.model_proto
    _rename_dims(proto, anchors, expected)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(path), save_as_external_data=False)


def export_encoder(model: LinkNetwork, path: Path, metadata: dict[str, str]) -> None:
    """Export the per-element sequence encoder."""
    c = model.config
    elements = torch.export.Dim("elements", min=1, max=65536)
    example = (torch.zeros(3, 4, c.sequence_length),)
    example[0][:, 0, ::2] = 1.0
    export_graph(
        model.encoder,
        example,
        path,
        ENCODER_INPUTS,
        ENCODER_OUTPUTS,
        {"sequence": {0: elements}},
        {("sequence", 0): "elements"},
        encoder_shapes(c.d_model, c.sequence_length),
        metadata,
    )


def export_predictor(model: LinkNetwork, path: Path, metadata: dict[str, str]) -> None:
    """Export the per-gene fusion and interaction graph (dynamic genes and candidates)."""
    c = model.config
    genes = torch.export.Dim("genes", min=1, max=65536)
    candidates = torch.export.Dim("candidates", min=1, max=4096)
    dyn = {
        "promoter_embedding": {0: genes},
        "promoter_sequence_mask": {0: genes},
        "promoter_features": {0: genes},
        "candidate_embedding": {0: genes, 1: candidates},
        "candidate_sequence_mask": {0: genes, 1: candidates},
        "candidate_features": {0: genes, 1: candidates},
        "candidate_mask": {0: genes, 1: candidates},
    }
    export_graph(
        model.predictor,
        example_predictor_inputs(3, 5, c),
        path,
        PREDICTOR_INPUTS,
        PREDICTOR_OUTPUTS,
        dyn,
        {("promoter_embedding", 0): "genes", ("candidate_mask", 1): "candidates"},
        predictor_shapes(c.d_model, c.features),
        metadata,
    )


def select_golden_genes(
    data: dict[str, np.ndarray], rows: np.ndarray, n: int, seed: int, max_windows: int = 96
) -> np.ndarray:
    """Golden genes among held-out ``rows``: extremes, sequence-bearing genes, then random.

    Always includes a gene without any candidate (the all-padding case) and the gene with the
    most candidates; up to about half are genes with real sequence for some element, as long as
    their windows add up to at most ``max_windows``.
    """
    n_cand = (data["candidate_index"][rows] >= 0).sum(1)
    n_seq = (data["promoter_sequence"][rows] >= 0).astype(int) + (data["candidate_sequence"][rows] >= 0).sum(
        1
    )
    chosen: list[int] = []
    zero = np.nonzero(n_cand == 0)[0]
    if len(zero) == 0:
        raise SystemExit("no held-out gene without candidates: the all-padding golden case needs one")
    chosen.append(int(zero[0]))
    chosen.append(int(np.argmax(n_cand)))
    rng = np.random.default_rng(seed)
    windows = 0
    for i in rng.permutation(np.nonzero(n_seq > 0)[0]):
        # keep the golden one-hot file small: at most max_windows encoder windows in all
        if len(chosen) >= n // 2 + 1 or int(i) in chosen or windows + n_seq[i] > max_windows:
            continue
        chosen.append(int(i))
        windows += int(n_seq[i])
    rest = [int(i) for i in rng.permutation(len(rows)) if int(i) not in chosen and n_cand[i] > 0]
    chosen += rest[: n - len(chosen)]
    return rows[np.array(chosen[:n])]


def golden_arrays(model: LinkNetwork, data: dict[str, np.ndarray], genes: np.ndarray) -> dict:
    """Encoder and predictor golden inputs and PyTorch outputs for ``genes``."""
    from . import encode

    c_max = max(int((data["candidate_index"][genes] >= 0).sum(1).max()), 1)
    p_seq = data["promoter_sequence"][genes]
    c_seq = data["candidate_sequence"][genes, :c_max]
    used = np.unique(np.concatenate([p_seq[p_seq >= 0], c_seq[c_seq >= 0]]))
    windows = [encode._ONE_HOT[data["sequences"][i]].T for i in used]
    windows.append(np.zeros((4, data["sequences"].shape[1]), dtype=np.uint8))  # an all-N window
    sequence = np.stack(windows).astype(np.uint8)
    with torch.no_grad():
        embedding = model.encoder(torch.from_numpy(sequence.astype(np.float32))).numpy()
    row_of = {int(s): i for i, s in enumerate(used)}
    d = model.config.d_model
    g = len(genes)
    inputs = {
        "promoter_embedding": np.zeros((g, d), dtype=np.float32),
        "promoter_sequence_mask": (p_seq >= 0).astype(np.float32),
        "promoter_features": data["promoter_features"][genes].astype(np.float32),
        "candidate_embedding": np.zeros((g, c_max, d), dtype=np.float32),
        "candidate_sequence_mask": (c_seq >= 0).astype(np.float32),
        "candidate_features": data["candidate_features"][genes, :c_max].astype(np.float32),
        "candidate_mask": (data["candidate_index"][genes, :c_max] >= 0).astype(np.float32),
    }
    for i in range(g):
        if p_seq[i] >= 0:
            inputs["promoter_embedding"][i] = embedding[row_of[int(p_seq[i])]]
        for j in np.nonzero(c_seq[i] >= 0)[0]:
            inputs["candidate_embedding"][i, j] = embedding[row_of[int(c_seq[i, j])]]
    outputs = torch_predictor(model, inputs)
    return {
        "encoder_inputs": {"sequence": sequence},
        "encoder_outputs": {"embedding": embedding.astype(np.float32)},
        "predictor_inputs": inputs,
        "predictor_outputs": outputs,
        "sequence_rows": used,
    }


@torch.no_grad()
def torch_predictor(model: LinkNetwork, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """PyTorch eval-mode outputs of the gene-level graph."""
    model.eval()
    out = model.predictor(*(torch.from_numpy(inputs[n]) for n in PREDICTOR_INPUTS))
    return {n: t.numpy().astype(np.float32) for n, t in zip(PREDICTOR_OUTPUTS, out, strict=True)}


def _run(session, names: list[str], feed: dict[str, np.ndarray], batch: int, outputs: list[str]):
    n = len(feed[names[0]])
    parts: list[list[np.ndarray]] = [[] for _ in outputs]
    for lo in range(0, n, batch):
        chunk = {k: np.ascontiguousarray(feed[k][lo : lo + batch].astype(np.float32)) for k in names}
        for i, arr in enumerate(session.run(outputs, chunk)):
            parts[i].append(arr)
    return {name: np.concatenate(parts[i]) for i, name in enumerate(outputs)}


def _diff(got: dict, want: dict, where: str) -> float:
    worst = 0.0
    for k, w in want.items():
        g = got[k][..., : w.shape[-1]] if g_needs_trim(got[k], w) else got[k]
        if g.shape != w.shape or not np.all(np.isfinite(g)):
            raise SystemExit(f"ONNX Runtime output {k} ({where}) has shape {g.shape} or non-finite values")
        worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w))))
    return worst


def g_needs_trim(got: np.ndarray, want: np.ndarray) -> bool:
    """True when ``got`` has extra (padding) columns on its last axis compared with ``want``."""
    return got.ndim == want.ndim and got.ndim >= 2 and got.shape[-1] > want.shape[-1]


def check_parity(encoder_path: Path, predictor_path: Path, golden: dict) -> dict:
    """ONNX Runtime vs PyTorch on the golden inputs; raises above :data:`ATOL`."""
    report: dict = {"encoder": {}, "predictor": {}}
    enc = ort_session(encoder_path)
    seq = {"sequence": golden["encoder_inputs"]["sequence"]}
    for bs in (*PARITY_BATCH_SIZES, len(seq["sequence"])):
        got = _run(enc, ENCODER_INPUTS, seq, bs, ENCODER_OUTPUTS)
        report["encoder"][str(bs)] = _diff(got, golden["encoder_outputs"], f"encoder batch {bs}")
    pred = ort_session(predictor_path)
    inputs, want = golden["predictor_inputs"], golden["predictor_outputs"]
    for bs in (*PARITY_BATCH_SIZES, len(inputs["promoter_features"])):
        got = _run(pred, PREDICTOR_INPUTS, inputs, bs, PREDICTOR_OUTPUTS)
        report["predictor"][str(bs)] = _diff(got, want, f"predictor batch {bs}")
    # extra candidate padding (mask 0, junk values) must not change anything
    extra = 7
    padded = {}
    rng = np.random.default_rng(0)
    for k, v in inputs.items():
        if k.startswith("candidate_"):
            pad_shape = (v.shape[0], extra) + v.shape[2:]
            junk = (
                rng.normal(size=pad_shape).astype(np.float32)
                if k != "candidate_mask"
                else np.zeros(pad_shape, np.float32)
            )
            padded[k] = np.concatenate([v, junk], axis=1)
        else:
            padded[k] = v
    got = _run(pred, PREDICTOR_INPUTS, padded, len(inputs["promoter_features"]), PREDICTOR_OUTPUTS)
    if np.any(got["attention"][:, -extra:] != 0):
        raise SystemExit("attention on padded candidates is not 0")
    report["predictor"]["padded_plus_7"] = _diff(got, want, "predictor with 7 extra padded candidates")
    # the all-padding gene
    empty = np.nonzero(inputs["candidate_mask"].sum(1) == 0)[0]
    if len(empty) == 0:
        raise SystemExit("the golden genes lack the all-padding case")
    one = {k: v[empty[:1]] for k, v in inputs.items()}
    got = _run(pred, PREDICTOR_INPUTS, one, 1, PREDICTOR_OUTPUTS)
    if not (np.all(np.isfinite(got["expression"])) and np.all(got["attention"] == 0)):
        raise SystemExit(f"all-padding gene: expression {got['expression']}, attention {got['attention']}")
    report["all_padding_gene"] = {"expression": float(got["expression"][0]), "attention_all_zero": True}
    report["max_abs_diff"] = max(max(report["encoder"].values()), max(report["predictor"].values()))
    if report["max_abs_diff"] > ATOL:
        raise SystemExit(
            f"ONNX Runtime differs from PyTorch by {report['max_abs_diff']:.3g} > {ATOL}: {report}"
        )
    return report


def write_golden(directory: Path, golden: dict, data: dict[str, np.ndarray], genes: np.ndarray) -> dict:
    """Write the golden ``.npy`` files and the gene/element tables; returns the file map."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "encoder": {
            "inputs": {"sequence": "encoder_sequence.npy"},
            "outputs": {"embedding": "encoder_embedding.npy"},
        },
        "predictor": {
            "inputs": {n: f"{n}.npy" for n in PREDICTOR_INPUTS},
            "outputs": {n: f"{n}.npy" for n in PREDICTOR_OUTPUTS},
        },
        "genes": "genes.tsv",
        "elements": "elements.tsv",
    }
    np.save(directory / "encoder_sequence.npy", golden["encoder_inputs"]["sequence"].astype(np.uint8))
    np.save(directory / "encoder_embedding.npy", golden["encoder_outputs"]["embedding"])
    for part in ("predictor_inputs", "predictor_outputs"):
        for k, v in golden[part].items():
            np.save(directory / f"{k}.npy", v.astype(np.float32))
    c_max = golden["predictor_inputs"]["candidate_mask"].shape[1]
    lines = ["row\tgene\tsymbol\tchrom\ttss\tstrand\tcandidates\texpression_target"]
    for i, g in enumerate(genes):
        lines.append(
            f"{i}\t{data['ensid'][g]}\t{data['symbol'][g]}\t{data['chrom'][g]}\t{data['tss'][g]}\t"
            f"{data['strand'][g]}\t{int((data['candidate_index'][g] >= 0).sum())}\t"
            f"{data['expression'][g]:.6f}"
        )
    (directory / "genes.tsv").write_text("\n".join(lines) + "\n")
    used = {int(s): i for i, s in enumerate(golden["sequence_rows"])}
    lines = [
        "row\tslot\tchrom\tstart0\tend0\tsequence_start0\tdistance_bp\tencoder_row\taccessibility_norm\t"
        "h3k27ac_norm\tis_hic\t" + "\t".join(FEATURES)
    ]
    means = data["track_means"]
    half = data["sequences"].shape[1] // 2
    for i, g in enumerate(genes):
        tss = int(data["tss"][g])
        ps = int(data["promoter_sequence"][g])
        f = data["promoter_features"][g]
        a, h = data["promoter_signal"][g]
        lines.append(
            f"{i}\tpromoter\t{data['chrom'][g]}\t{tss - 500}\t{tss + 500}\t{tss - half}\t0\t"
            f"{used.get(ps, -1)}\t"
            f"{a:.10g}\t{h:.10g}\t0\t" + "\t".join(f"{x:.9g}" for x in f)
        )
        for j in range(c_max):
            ci = int(data["candidate_index"][g, j])
            if ci < 0:
                break
            s, e = int(data["cand_start"][ci]), int(data["cand_end"][ci])
            cs = int(data["candidate_sequence"][g, j])
            f = data["candidate_features"][g, j]
            a = data["cand_accessibility"][ci] / means[0]
            h = data["cand_h3k27ac"][ci] / means[1]
            lines.append(
                f"{i}\t{j}\t{data['chrom'][g]}\t{s}\t{e}\t{(s + e) // 2 - half}\t"
                f"{int(data['candidate_distance'][g, j])}\t{used.get(cs, -1)}\t{a:.10g}\t{h:.10g}\t"
                f"{int(data['candidate_is_hic'][g, j])}\t" + "\t".join(f"{x:.9g}" for x in f)
            )
    (directory / "elements.tsv").write_text("\n".join(lines) + "\n")
    return files


def ort_speed(model_dir: Path, threads: int = 2) -> dict:
    """Throughput measured by :mod:`.link_ortbench` in a fresh process (no PyTorch threads)."""
    out = subprocess.run(
        [sys.executable, "-m", "cistrack_training.link_ortbench", str(model_dir), "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def tensor_list(shapes: dict[str, list], names: list[str]) -> list[dict]:
    """``model.json`` tensor declarations."""
    return [{"name": n, "dtype": "float32", "shape": shapes[n]} for n in names]


def model_json(
    config: dict,
    version: str,
    model: LinkNetwork,
    digests: dict[str, str],
    eval_metrics: dict | None,
    fold_history: dict,
    parity: dict,
    speed: dict | None,
    golden_files: dict,
    golden_genes: int,
    dataset_summary: dict,
) -> dict:
    """The contract's ``model.json`` for the link model."""
    c = model.config
    feat = config["features"]
    fold = int(config["export"]["fold"])
    pshapes = predictor_shapes(c.d_model, c.features)
    eshapes = encoder_shapes(c.d_model, c.sequence_length)
    seq_summary = dataset_summary.get("sequence", {})
    metrics: dict = {
        "exported_fold": {
            "fold": fold,
            "test_chromosomes": fold_history["chromosomes"]["test"],
            "valid_chromosomes": fold_history["chromosomes"]["valid"],
            "test_pearson": fold_history["test_pearson"],
            "best_valid_pearson": fold_history["best_valid_pearson"],
            "best_epoch": fold_history["best_epoch"],
        },
        "parity_onnxruntime_vs_pytorch": parity,
        "encoder_gflop_per_element": encoder_flops(c) / 1e9,
    }
    if eval_metrics is not None:
        ex = eval_metrics["expression"]
        cr = eval_metrics["crispri"]
        key = next(k for k in cr["overall"]["attention"] if k.startswith("precision_at"))
        metrics["expression_cross_validation"] = {
            "target": ex["target"],
            "folds_evaluated": ex["folds_evaluated"],
            "pooled_pearson": ex["pooled"]["pearson"],
            "pooled_genes": ex["pooled"]["genes"],
            "per_fold_pearson": {str(f["fold"]): f["pearson"] for f in ex["per_fold"]},
            "baseline_promoter_activity_pearson": ex["baseline_promoter_activity_pearson"],
            "note": "each gene predicted by the fold model that held out its chromosome",
        }
        metrics["crispri_links"] = {
            "benchmark": "EPCrisprBenchmark K562 training set (GRCh38), element-gene pairs within 100 kb",
            "pairs": cr["pairs"],
            "positives": cr["positives"],
            "auprc": {k: cr["overall"][k]["auprc"] for k in ("attention", "abc", "distance")},
            key: {k: cr["overall"][k][key] for k in ("attention", "abc", "distance")},
            "by_distance_auprc": {
                b: {
                    "pairs": m["pairs"],
                    "positives": m["positives"],
                    **{k: m[k]["auprc"] for k in ("attention", "abc", "distance")},
                }
                for b, m in cr["by_distance"].items()
            },
            "contact": "power law (ABC gamma 1.0242) for all but "
            f"{cr['pairs_with_hic_contact']} pairs, which have K562 Hi-C (chr22 only)",
            "attention_within_gene": cr.get("attention_within_gene"),
            "published_reference_auprc": cr["published_reference"],
            "note": "scored with the model of the fold that held out the gene's chromosome",
        }
    if speed is not None:
        metrics["onnxruntime_cpu"] = {
            **speed,
            "graph_optimization": "all",
            "machine": machine_description(),
            "note": "median of 3 runs of 5 s; predictor at 64 genes x 60 present candidates; the machine was "
            "shared with other work, so treat as approximate",
        }
    return {
        "schema_version": 1,
        "name": NAME,
        "version": version,
        "kind": "link",
        "description": (
            "EPInformer-style enhancer-gene link model (promoter + up to 60 candidates within 100 kb, "
            f"{c.layers} pre-LN Transformer layers, {c.heads} heads, d={c.d_model}) trained on real K562 "
            "CAGE expression with ABC-style K562 DNase/H3K27ac candidate counts"
            + (
                f", plus an auxiliary loss (weight {config['training']['aux_weight']}) pulling the promoter's "
                "attention onto CRISPRi-regulated elements of the training genes"
                if config["training"].get("aux_weight")
                else ""
            )
            + "; reduced CPU configuration, sequence present for <2% of elements"
        ),
        "graphs": {
            "encoder": {
                "onnx": "encoder.onnx",
                "sha256": digests["encoder"],
                "inputs": tensor_list(eshapes, ENCODER_INPUTS),
                "outputs": tensor_list(eshapes, ENCODER_OUTPUTS),
            },
            "predictor": {
                "onnx": "predictor.onnx",
                "sha256": digests["predictor"],
                "inputs": tensor_list(pshapes, PREDICTOR_INPUTS),
                "outputs": tensor_list(pshapes, PREDICTOR_OUTPUTS),
            },
        },
        "embedding_dim": c.d_model,
        "sequence": {
            "alphabet": "ACGT",
            "layout": "channels_first",
            "other_bases": "zeros",
            "length": c.sequence_length,
            "centre": "candidate: (start0 + end0) // 2; promoter: the TSS",
            "window": "[centre - length/2, centre + length/2), reference (+) strand for every element",
        },
        "features": {
            "names": list(FEATURES),
            "max_distance": feat["max_distance"],
            "max_candidates": feat["max_candidates"],
            "promoter_exclusion": feat["promoter_exclusion"],
            "promoter_window": feat["promoter_window"],
            "sequence_length": c.sequence_length,
            "max_n_fraction": feat["max_n_fraction"],
            "tss": "promoter token at the gene's TSS (0-based); ABC/EPInformer convention: gene start "
            "for +, gene end for -",
            "candidate_selection": "candidates with |(start0 + end0) // 2 - tss| <= max_distance that do "
            "not overlap [tss - promoter_exclusion, tss + promoter_exclusion), sorted by that distance "
            "then start0, first "
            "max_candidates",
            "signal": "zero-filled mean of the bigWig over the element ([start0, end0) for a candidate, "
            "[tss - promoter_window, tss + promoter_window) for the promoter) divided by the track's "
            "sumData / basesCovered",
            "definitions": {
                "distance": "log1p(d / 1000), d = |midpoint - tss| in bp (0 for the promoter)",
                "contact": "((min_distance + 1) / (max(d, min_distance) + 1)) ** gamma (1 for the promoter)",
                "activity": "log1p(sqrt(a * h)), a and h the normalised accessibility and H3K27ac signals",
                "accessibility": "log1p(a)",
                "h3k27ac": "log1p(h)",
            },
            "powerlaw": {
                "gamma": feat["powerlaw"]["gamma"],
                "min_distance": feat["powerlaw"]["min_distance"],
            },
            "normalisation": "window-mean/track-mean/log1p",
            "dtype": "computed in float64, cast to float32",
        },
        "outputs_meaning": {
            "embedding": "sequence token of one element; cacheable per (build, model sha256, element window)",
            "expression": "predicted log10(1 + CAGE TPM) of the gene",
            "attention": "link score: promoter attention over candidates averaged over layers and heads, "
            "0 at "
            "padding, sums to 1 over the gene's candidates (all 0 when it has none)",
        },
        "architecture": {
            "d_model": c.d_model,
            "heads": c.heads,
            "layers": c.layers,
            "ff_mult": c.ff_mult,
            "dropout": c.dropout,
            "encoder": {
                "channels": c.encoder_channels,
                "stem_kernel": c.encoder_stem_kernel,
                "pool": c.encoder_pool,
                "dilations": list(c.encoder_dilations),
            },
            "parameters": parameter_count(model),
            "parameters_by_graph": {
                "encoder": parameter_count(model.encoder),
                "predictor": parameter_count(model.predictor),
            },
        },
        "training": {
            "data": "real K562: ABC-style candidate regions with DNase (ENCFF257HEE) and H3K27ac "
            "(ENCFF232RQF + "
            "ENCFF600THN + ENCFF704LGA) read counts, ENCODE K562 CAGE (TPM >= 1 peaks), hg38.partial.fa.gz "
            f"sequence where real ({seq_summary.get('candidate_slots_with_sequence', '?')} of "
            f"{seq_summary.get('candidate_slots_total', '?')} gene-candidate slots and "
            f"{seq_summary.get('promoters_with_sequence', '?')} promoters; all other elements "
            "sequence-masked)",
            "split": "EPInformer 12-fold leave-chromosome-out split of 18,377 genes; this export is fold "
            f"{fold} (test {', '.join(fold_history['chromosomes']['test'])}, valid "
            f"{', '.join(fold_history['chromosomes']['valid'])})",
            "reduced": "CPU configuration: "
            + (
                f"at most {config['training']['epochs']} epochs per fold, early stopping after "
                f"{config['training']['patience']} without a better validation objective"
                if config["training"].get("patience")
                else f"{config['training']['epochs']} epochs per fold"
            )
            + ", sequence masked for >98% of elements",
            "aux_weight": config["training"].get("aux_weight", 0.0),
            "best_epoch": fold_history.get("best_epoch"),
            "seed": config["seed"],
            "config": config.get("config_path"),
            "genes": fold_history["genes"],
        },
        "metrics": metrics,
        "golden": {
            "dir": "golden",
            **golden_files,
            "gene_count": golden_genes,
            "atol": ATOL,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Export the cistrack link model to two ONNX graphs.")
    parser.add_argument("--config", type=Path, help="run config JSON (merged over the link defaults)")
    parser.add_argument("--run-dir", type=Path, help="default: <runs_dir>/<name>")
    parser.add_argument(
        "--out",
        type=Path,
        help="models/ directory (default: export.out of the config, else this repo's models/)",
    )
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument(
        "--no-speed", action="store_true", help="skip the ONNX Runtime throughput measurement"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    config = load_link_config(args.config)
    run_dir = args.run_dir or resolve(config["runs_dir"]) / config["name"]
    saved = run_dir / "config.json"
    if saved.exists():
        # the export section may change after training; everything else must be what was trained
        previous = json.loads(saved.read_text())
        ignore = ("config_path", "export")
        if {k: v for k, v in previous.items() if k not in ignore} != {
            k: v for k, v in config.items() if k not in ignore
        }:
            raise SystemExit(
                f"{saved} differs from the given config; export the run with the config it was trained with"
            )
    fold = int(config["export"]["fold"])
    fold_dir = run_dir / f"fold_{fold}"
    if not (fold_dir / "predictions.npz").exists():
        raise SystemExit(f"{fold_dir} is not trained; run link_train first")
    data = load_dataset(dataset_path(config, run_dir))
    model = load_network(fold_dir / "best.pt", torch.device("cpu"))
    history = json.loads((fold_dir / "history.json").read_text())
    eval_path = run_dir / "eval" / "metrics.json"
    eval_metrics = json.loads(eval_path.read_text()) if eval_path.exists() else None
    if eval_metrics is None:
        log(f"{eval_path} is missing: model.json will carry only the exported fold's metrics")
    out_root = args.out or (resolve(config["export"]["out"]) if config["export"].get("out") else MODELS_ROOT)
    target = out_root / NAME / args.version
    target.mkdir(parents=True, exist_ok=True)
    genes = select_golden_genes(
        data, fold_rows(data, fold)["test"], int(config["export"]["golden_genes"]), int(config["seed"])
    )
    golden = golden_arrays(model, data, genes)
    files = write_golden(target / "golden", golden, data, genes)
    metadata = {
        "cistrack.name": NAME,
        "cistrack.version": args.version,
        "cistrack.kind": "link",
        "cistrack.sequence_length": str(model.config.sequence_length),
        "cistrack.embedding_dim": str(model.config.d_model),
        "cistrack.features": ",".join(FEATURES),
    }
    paths = {"encoder": target / "encoder.onnx", "predictor": target / "predictor.onnx"}
    log("exporting encoder.onnx")
    export_encoder(model, paths["encoder"], {**metadata, "cistrack.graph": "encoder"})
    log("exporting predictor.onnx")
    export_predictor(model, paths["predictor"], {**metadata, "cistrack.graph": "predictor"})
    parity = check_parity(paths["encoder"], paths["predictor"], golden)
    log(f"ONNX Runtime vs PyTorch max abs diff {parity['max_abs_diff']:.3g}")
    digests = {k: sha256(p) for k, p in paths.items()}
    summary = json.loads((dataset_path(config, run_dir).parent / "dataset.json").read_text())
    sidecar = model_json(
        config, args.version, model, digests, eval_metrics, history, parity, None, files, len(genes), summary
    )
    (target / "model.json").write_text(json.dumps(json_safe(sidecar), indent=2, allow_nan=False) + "\n")
    if not args.no_speed:
        speed = ort_speed(target)
        log(
            f"ONNX Runtime CPU: encoder {speed['encoder_elements_per_second']:.0f} elements/s, "
            f"predictor {speed['predictor_genes_per_second']:.0f} genes/s (2 threads)"
        )
        sidecar = model_json(
            config,
            args.version,
            model,
            digests,
            eval_metrics,
            history,
            parity,
            speed,
            files,
            len(genes),
            summary,
        )
        (target / "model.json").write_text(json.dumps(json_safe(sidecar), indent=2, allow_nan=False) + "\n")
    for k, p in paths.items():
        log(f"{k}: {p} ({p.stat().st_size:,} bytes, sha256 {digests[k]})")
    (run_dir / "export.json").write_text(
        json.dumps({"dir": str(target), "sha256": digests, "parity": parity}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
