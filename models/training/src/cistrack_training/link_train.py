"""Train the enhancer-gene link model per leave-chromosome-out fold and predict its held-out genes.

Usage (from ``models/training``)::

    python -m cistrack_training.link_train --config configs/link-0.1.0.json
    python -m cistrack_training.link_train --config configs/link-0.1.0.json --resume
    python -m cistrack_training.link_train --config configs/link-0.1.0.json --folds 11 12

The dataset (:mod:`cistrack_training.link_data`) is built first when the run has none. For each
fold of ``training.folds`` a fresh model is trained on the fold's ``train`` genes for
``training.epochs`` epochs (AdamW, MSE on ``log10(1 + TPM)``, linear warm-up then cosine decay);
the epoch with the best Pearson r on the fold's ``valid`` genes is kept
(``runs/<name>/fold_<k>/best.pt``) and predicts the fold's ``test`` genes (held-out chromosomes)
into ``fold_<k>/predictions.npz``: expression and the per-gene attention over candidates. Each
epoch writes ``fold_<k>/last.pt``; ``--resume`` continues there, and finished folds are skipped.

With ``training.aux_weight`` > 0 the loss adds an auxiliary term on the CRISPRi training pairs of
the fold's ``train`` genes (never its valid or test genes): for a gene with regulated elements
among its candidates, ``-log`` of the promoter attention mass on them, so that the attention
singles out the regulating element. With ``training.patience`` set, a fold stops once its
validation objective (MSE, plus the auxiliary term on the valid genes' pairs) has not improved
for that many epochs, and the best epoch by that objective is kept (``training.epochs`` is then
the maximum).

Only elements whose 2-kb window is real sequence (``link_data``) go through the sequence
encoder; every other element is sequence-masked. During training, present sequences are also
masked at random (``training.sequence_dropout``) so that the model stays usable without them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import encode
from .config import pin_run_config, resolve
from .link_config import load_link_config
from .config import data_path
from .link_data import ensure_dataset, log, pair_slots, read_crispri
from .link_model import LinkModelConfig, LinkNetwork, parameter_count


def format_seconds(seconds: float) -> str:
    """``1h02m03s`` style duration."""
    seconds = max(int(seconds), 0)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def lr_at(step: int, total: int, base: float, warmup: int, min_fraction: float) -> float:
    """Linear warm-up to ``base`` over ``warmup`` steps, then cosine decay to ``min_fraction * base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return base * (min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (NaN when either side is constant)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(np.sum(x * x) * np.sum(y * y)))
    return float(np.sum(x * y) / denom) if denom > 0 else float("nan")


def model_config_from(config: dict) -> LinkModelConfig:
    """The :class:`LinkModelConfig` of a run configuration."""
    values = dict(config["model"])
    values["sequence_length"] = config["features"]["sequence_length"]
    return LinkModelConfig.from_dict(values)


class GeneBatches:
    """Turn dataset rows into :class:`~cistrack_training.link_model.LinkNetwork` inputs.

    Parameters
    ----------
    data : dict
        The dataset arrays (:func:`cistrack_training.link_data.load_dataset`).
    device : torch.device
        Where tensors go.
    use_sequence : bool
        When false every element is sequence-masked.
    """

    def __init__(self, data: dict[str, np.ndarray], device: torch.device, use_sequence: bool = True):
        self.data = data
        self.device = device
        self.n_candidates = (data["candidate_index"] >= 0).sum(1)
        self.one_hot = torch.from_numpy(
            encode._ONE_HOT[data["sequences"]].transpose(0, 2, 1).astype(np.float32)
        )
        self.use_sequence = use_sequence and len(data["sequences"]) > 0

    def inputs(
        self, rows: np.ndarray, sequence_dropout: float = 0.0, rng: np.random.Generator | None = None
    ) -> dict[str, torch.Tensor | None]:
        """Inputs for genes ``rows``, padded to the batch's largest candidate count (at least 1)."""
        d = self.data
        c = max(int(self.n_candidates[rows].max()), 1)
        mask = (d["candidate_index"][rows, :c] >= 0).astype(np.float32)
        p_seq = d["promoter_sequence"][rows].astype(np.int64)
        c_seq = d["candidate_sequence"][rows, :c].astype(np.int64)
        if not self.use_sequence:
            p_seq = np.full_like(p_seq, -1)
            c_seq = np.full_like(c_seq, -1)
        elif sequence_dropout > 0 and rng is not None:
            p_seq = np.where(rng.random(p_seq.shape) < sequence_dropout, -1, p_seq)
            c_seq = np.where(rng.random(c_seq.shape) < sequence_dropout, -1, c_seq)
        used = np.unique(np.concatenate([p_seq[p_seq >= 0], c_seq[c_seq >= 0]]))
        remap = np.full(max(len(d["sequences"]), 1), -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        p_seq = np.where(p_seq >= 0, remap[np.maximum(p_seq, 0)], -1)
        c_seq = np.where(c_seq >= 0, remap[np.maximum(c_seq, 0)], -1)
        dev = self.device
        return {
            "one_hot": self.one_hot[torch.from_numpy(used)].to(dev) if len(used) else None,
            "promoter_sequence": torch.from_numpy(p_seq).to(dev),
            "promoter_features": torch.from_numpy(d["promoter_features"][rows]).to(dev),
            "candidate_sequence": torch.from_numpy(c_seq).to(dev),
            "candidate_features": torch.from_numpy(
                np.ascontiguousarray(d["candidate_features"][rows, :c])
            ).to(dev),
            "candidate_mask": torch.from_numpy(mask).to(dev),
        }

    def target(self, rows: np.ndarray) -> torch.Tensor:
        """Expression targets."""
        return torch.from_numpy(self.data["expression"][rows]).to(self.device)


def regulated_slots(config: dict, data: dict[str, np.ndarray]) -> np.ndarray:
    """``(genes, max_candidates)`` bool: candidate slots overlapping a CRISPRi-regulated element."""
    pairs = read_crispri(data_path(config, "crispri"), data, config["features"]["max_distance"])
    out = np.zeros(data["candidate_index"].shape, dtype=bool)
    for p, slots in enumerate(pair_slots(pairs, data)):
        if pairs.regulated[p] and len(slots):
            out[pairs.gene[p], slots] = True
    return out


def aux_loss(attention: torch.Tensor, positive: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean ``-log(attention mass on the regulated slots)`` over the genes that have one."""
    has = positive.any(dim=1)
    n = int(has.sum())
    if n == 0:
        return attention.sum() * 0.0, 0
    mass = (attention * positive.to(attention.dtype)).sum(dim=1)[has]
    return -torch.log(mass + 1e-4).mean(), n


def bucketed_batches(rows: np.ndarray, n_candidates: np.ndarray, batch_size: int, rng) -> list[np.ndarray]:
    """Batches of genes with similar candidate counts (less padding), in random order.

    Genes are sorted by candidate count with random tie-breaking, cut into batches of
    ``batch_size`` and the batches shuffled; every gene appears once.
    """
    order = rows[np.lexsort((rng.random(len(rows)), n_candidates[rows]))]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


@torch.no_grad()
def predict(model: LinkNetwork, batches: GeneBatches, rows: np.ndarray, batch_size: int):
    """Expression ``(n,)`` and attention ``(n, max_candidates)`` (0 at padding) for ``rows``.

    Genes are run in order of candidate count (less padding); the results come back in the order
    of ``rows``. Padding does not change a gene's outputs (the attention mask removes it).
    """
    model.eval()
    width = batches.data["candidate_index"].shape[1]
    expression = np.zeros(len(rows), dtype=np.float32)
    attention = np.zeros((len(rows), width), dtype=np.float32)
    order = np.argsort(batches.n_candidates[rows], kind="stable")
    for lo in range(0, len(rows), batch_size):
        pos = order[lo : lo + batch_size]
        e, a = model(**batches.inputs(rows[pos]))
        expression[pos] = e.cpu().numpy()
        attention[pos, : a.shape[1]] = a.cpu().numpy()
    return expression, attention


def save_checkpoint(path: Path, **state) -> None:
    """Write a checkpoint atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_network(path: Path, device: torch.device) -> LinkNetwork:
    """Load ``best.pt`` of a fold as an eval-mode :class:`LinkNetwork`."""
    state = torch.load(path, map_location=device, weights_only=False)
    model = LinkNetwork(LinkModelConfig.from_dict(state["model_config"])).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


def fold_rows(data: dict[str, np.ndarray], fold: int) -> dict[str, np.ndarray]:
    """Gene rows of each part of fold ``fold`` (1-based)."""
    col = data["split"][:, fold - 1]
    return {name: np.nonzero(col == code)[0] for name, code in (("train", 0), ("valid", 1), ("test", 2))}


def train_fold(
    fold: int, config: dict, data: dict[str, np.ndarray], run_dir: Path, device: torch.device, resume: bool
) -> dict:
    """Train one fold and write its held-out predictions; returns the fold's record."""
    cfg = config["training"]
    seed = int(config["seed"])
    fold_dir = run_dir / f"fold_{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    done = fold_dir / "predictions.npz"
    if done.exists():
        log(f"fold {fold}: already done")
        return json.loads((fold_dir / "history.json").read_text())
    rows = fold_rows(data, fold)
    train_rows = rows["train"]
    if cfg["max_train_genes"]:
        sub = np.random.default_rng([seed, fold, 99]).permutation(len(train_rows))[: cfg["max_train_genes"]]
        train_rows = np.sort(train_rows[sub])
    chroms = {k: sorted(set(data["chrom"][v].tolist())) for k, v in rows.items()}
    batches = GeneBatches(data, device, config["features"]["use_sequence"])
    aux_weight = float(cfg.get("aux_weight", 0.0))
    patience = cfg.get("patience")
    positive = regulated_slots(config, data) if aux_weight > 0 else None
    mc = model_config_from(config)
    torch.manual_seed(seed * 100 + fold)
    model = LinkNetwork(mc).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    bs = int(cfg["batch_size"])
    steps_per_epoch = math.ceil(len(train_rows) / bs)
    epochs = int(cfg["epochs"])
    total_steps = epochs * steps_per_epoch
    history: dict = {
        "fold": fold,
        "chromosomes": chroms,
        "genes": {
            "train": int(len(train_rows)),
            "valid": int(len(rows["valid"])),
            "test": int(len(rows["test"])),
        },
        "parameters": {
            "encoder": parameter_count(model.encoder),
            "predictor": parameter_count(model.predictor),
        },
        "epochs": [],
        "train_seconds": 0.0,
        "aux_weight": aux_weight,
        "aux_genes": {
            k: int(positive[v].any(axis=1).sum()) if positive is not None else 0
            for k, v in (("train", train_rows), ("valid", rows["valid"]), ("test", rows["test"]))
        },
    }
    # the best epoch: highest valid Pearson r, or with patience the lowest valid objective
    best = -2.0 if patience is None else -float("inf")
    start_epoch = 0
    last = fold_dir / "last.pt"
    if resume and last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
        log(f"fold {fold}: resumed after epoch {start_epoch}/{epochs}")
    elif last.exists():
        raise SystemExit(f"{last} exists; pass --resume to continue or remove {fold_dir}")
    every = int(config["progress_every"])
    log(
        f"fold {fold}: train {len(train_rows):,} genes ({', '.join(chroms['train'][:3])}...), "
        f"valid {len(rows['valid']):,} ({', '.join(chroms['valid'])}), "
        f"test {len(rows['test']):,} ({', '.join(chroms['test'])})"
    )
    for epoch in range(start_epoch, epochs):
        torch.manual_seed(seed * 1000 + fold * 100 + epoch)
        rng = np.random.default_rng([seed, fold, epoch])
        epoch_batches = bucketed_batches(train_rows, batches.n_candidates, bs, rng)
        model.train()
        t0 = time.time()
        running, seen = 0.0, 0
        for step in range(steps_per_epoch):
            lr = lr_at(
                epoch * steps_per_epoch + step,
                total_steps,
                cfg["lr"],
                cfg["warmup_steps"],
                cfg["min_lr_fraction"],
            )
            for group in optimiser.param_groups:
                group["lr"] = lr
            sel = epoch_batches[step]
            expression, attention = model(**batches.inputs(sel, cfg["sequence_dropout"], rng))
            loss = F.mse_loss(expression, batches.target(sel))
            if positive is not None:
                pos = torch.from_numpy(positive[sel, : attention.shape[1]]).to(device)
                extra, _ = aux_loss(attention, pos)
                loss = loss + aux_weight * extra
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            optimiser.step()
            running += loss.item() * len(sel)
            seen += len(sel)
            if (step + 1) % every == 0 or step + 1 == steps_per_epoch:
                rate = seen / (time.time() - t0)
                left = (len(train_rows) - seen) / rate + (epochs - epoch - 1) * len(train_rows) / rate
                log(
                    f"fold {fold} epoch {epoch + 1}/{epochs} step {step + 1}/{steps_per_epoch} "
                    f"loss {running / seen:.4f} lr {lr:.2e} {rate:.0f} genes/s "
                    f"ETA fold {format_seconds(left)}"
                )
        seconds = time.time() - t0
        pred, valid_attention = predict(model, batches, rows["valid"], config["evaluation"]["batch_size"])
        y = data["expression"][rows["valid"]]
        r = pearson(pred, y)
        record = {
            "epoch": epoch + 1,
            "train_loss": running / seen,
            "valid_mse": float(np.mean((pred - y) ** 2)),
            "valid_pearson": r,
            "train_seconds": seconds,
            "genes_per_second": len(train_rows) / seconds,
        }
        if positive is not None:
            vp = torch.from_numpy(positive[rows["valid"]])
            va, n = aux_loss(torch.from_numpy(valid_attention), vp)
            record["valid_aux"] = float(va) if n else None
        objective = record["valid_mse"] + aux_weight * (record.get("valid_aux") or 0.0)
        record["valid_objective"] = objective
        history["epochs"].append(record)
        history["train_seconds"] += seconds
        log(
            f"fold {fold} epoch {epoch + 1}/{epochs} done in {format_seconds(seconds)}: train loss "
            f"{record['train_loss']:.4f} valid MSE {record['valid_mse']:.4f} valid r {r:.4f}"
            + (f" valid aux {record['valid_aux']:.4f}" if record.get("valid_aux") is not None else "")
        )
        score = r if patience is None else -objective
        if score > best:
            best = score
            history["best_epoch"] = epoch + 1
            save_checkpoint(
                fold_dir / "best.pt",
                model=model.state_dict(),
                model_config=mc.to_dict(),
                epoch=epoch,
                valid_pearson=r,
            )
        save_checkpoint(
            last,
            model=model.state_dict(),
            optimiser=optimiser.state_dict(),
            epoch=epoch,
            history=history,
            best=best,
        )
        if patience is not None and epoch + 1 - history["best_epoch"] >= int(patience):
            log(f"fold {fold}: no better validation objective for {patience} epochs; stopping")
            break
    model = load_network(fold_dir / "best.pt", device)
    test = rows["test"]
    expression, attention = predict(model, batches, test, config["evaluation"]["batch_size"])
    r = pearson(expression, data["expression"][test])
    history["test_pearson"] = r
    history["best_valid_pearson"] = history["epochs"][history["best_epoch"] - 1]["valid_pearson"]
    log(
        f"fold {fold}: test r {r:.4f} on {len(test):,} genes ({', '.join(chroms['test'])}); "
        f"best epoch {history['best_epoch']}"
    )
    np.savez_compressed(
        fold_dir / "predictions.tmp.npz",
        rows=test,
        expression=expression,
        attention=attention,
        target=data["expression"][test],
    )
    (fold_dir / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    os.replace(fold_dir / "predictions.tmp.npz", done)
    return history


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Train the cistrack enhancer-gene link model per fold.")
    parser.add_argument("--config", type=Path, help="run config JSON (merged over the link defaults)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted fold")
    parser.add_argument("--folds", type=int, nargs="+", help="folds to train (default: training.folds)")
    parser.add_argument("--run-dir", type=Path, help="default: <runs_dir>/<name>")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default: training.threads; 0 means all cores)"
    )
    args = parser.parse_args(argv)
    config = load_link_config(args.config)
    run_dir = args.run_dir or resolve(config["runs_dir"]) / config["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    pin_run_config(run_dir, config)
    threads = config["training"]["threads"] if args.threads is None else args.threads
    torch.set_num_threads(threads or os.cpu_count() or 1)
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    log(f"run {run_dir} on {device} with {torch.get_num_threads()} threads")
    t0 = time.time()
    data = ensure_dataset(config, run_dir)
    folds = args.folds or config["training"]["folds"]
    for fold in folds:
        train_fold(int(fold), config, data, run_dir, device, args.resume)
    log(f"trained folds {folds} in {format_seconds(time.time() - t0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
