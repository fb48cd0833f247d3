"""Probability calibration fitted on a validation split (``model.json`` ``calibration``).

Two maps from logit to probability, both applied by the Rust runtime
(``src/model/calibration.rs``, the same formulas):

* ``temperature``: ``sigmoid(logit / T)``, ``T`` minimising the negative log-likelihood;
* ``isotonic``: the pool-adjacent-violators fit of the labels on the logits, stored as knots
  ``(logit, probability)`` and applied by linear interpolation between knots, constant beyond;
* ``by_modalities``: one of those per set of present modalities (key: the present modalities
  in model order joined by ``+``, as :func:`modality_set`), chosen per window by its modality
  mask, with a ``default`` fitted on every window for the sets not listed. Asked for as
  ``by_modalities:temperature`` or ``by_modalities:isotonic``.

:func:`choose` picks a method by cross-fitting on the validation split (fit on four fifths,
score the fifth left out, per source), so the test split plays no part in the choice.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function (float64)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def _nll(y: np.ndarray, z: np.ndarray) -> float:
    # log(1 + exp(-z)) for y = 1 and log(1 + exp(z)) for y = 0, stably
    return float(np.mean(np.logaddexp(0.0, np.where(y > 0.5, -z, z))))


def fit_temperature(y: np.ndarray, logit: np.ndarray) -> float:
    """The temperature ``T > 0`` minimising the NLL of ``sigmoid(logit / T)``.

    A golden-section search over ``log T`` in ``[log 0.05, log 20]`` (the NLL is unimodal in
    ``1/T`` for fixed logits).
    """
    y = np.asarray(y, dtype=np.float64)
    logit = np.asarray(logit, dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise ValueError("calibration needs both classes in the validation labels")
    lo, hi = np.log(0.05), np.log(20.0)
    g = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = _nll(y, logit / np.exp(a)), _nll(y, logit / np.exp(b))
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = _nll(y, logit / np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = _nll(y, logit / np.exp(b))
    return float(np.exp((lo + hi) / 2.0))


def fit_isotonic(y: np.ndarray, logit: np.ndarray) -> tuple[list[float], list[float]]:
    """Isotonic (non-decreasing) regression of ``y`` on ``logit`` by pool-adjacent-violators.

    Returns
    -------
    tuple of list
        Knots: strictly increasing logits (each block's mean logit) and non-decreasing
        probabilities (each block's label mean).
    """
    order = np.argsort(np.asarray(logit, dtype=np.float64), kind="mergesort")
    x = np.asarray(logit, dtype=np.float64)[order]
    t = np.asarray(y, dtype=np.float64)[order]
    if len(np.unique(t)) < 2:
        raise ValueError("calibration needs both classes in the validation labels")
    # blocks as [sum_y, sum_x, count]
    blocks: list[list[float]] = []
    for xi, ti in zip(x, t, strict=True):
        blocks.append([ti, xi, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][2] >= blocks[-1][0] / blocks[-1][2]:
            s, sx, n = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += sx
            blocks[-1][2] += n
    knots_x = [b[1] / b[2] for b in blocks]
    knots_p = [b[0] / b[2] for b in blocks]
    # equal mean logits can only come from tied inputs in different blocks: merge them
    xs, ps = [knots_x[0]], [knots_p[0]]
    for kx, kp in zip(knots_x[1:], knots_p[1:], strict=True):
        if kx <= xs[-1]:
            ps[-1] = max(ps[-1], kp)
        else:
            xs.append(kx)
            ps.append(kp)
    if len(xs) < 2:
        raise ValueError("isotonic calibration collapsed to one knot (no ranking signal)")
    return xs, ps


MODALITIES = ("sequence", "h3k27ac", "accessibility")
"""Model input order of the modality mask (as ``encode.MODALITIES`` and the runtime)."""
MIN_SET_WINDOWS = 100
"""A modality set with fewer validation windows (or one class only) gets the default map."""
METHODS = ("temperature", "isotonic", "by_modalities:temperature", "by_modalities:isotonic")


def modality_set(mask: np.ndarray) -> str:
    """The key of the modalities present in one mask row (``none`` for none), as the runtime."""
    present = [m for m, v in zip(MODALITIES, mask, strict=True) if v > 0.5]
    return "+".join(present) if present else "none"


def fit(
    y: np.ndarray, logit: np.ndarray, method: str, fitted_on: str, masks: np.ndarray | None = None
) -> dict:
    """The ``model.json`` ``calibration`` object for ``method`` (one of :data:`METHODS`).

    ``masks`` (``(n, 3)`` modality masks) is needed by the ``by_modalities`` methods.
    """
    if method.startswith("by_modalities:"):
        inner = method.split(":", 1)[1]
        if masks is None:
            raise ValueError(f"calibration {method!r} needs the windows' modality masks")
        y, logit = np.asarray(y), np.asarray(logit)
        keys = np.array([modality_set(m) for m in masks])
        sets = {}
        for key in sorted(set(keys.tolist())):
            sel = keys == key
            if sel.sum() >= MIN_SET_WINDOWS and len(np.unique(y[sel])) == 2:
                sets[key] = fit(y[sel], logit[sel], inner, f"{int(sel.sum())} windows with {key}")
        return {
            "method": "by_modalities",
            "sets": sets,
            "default": fit(y, logit, inner, "every window"),
            "fitted_on": fitted_on,
        }
    if method == "temperature":
        return {"method": "temperature", "temperature": fit_temperature(y, logit), "fitted_on": fitted_on}
    if method == "isotonic":
        xs, ps = fit_isotonic(y, logit)
        return {"method": "isotonic", "logits": xs, "probabilities": ps, "fitted_on": fitted_on}
    raise ValueError(f"calibration method {method!r}: expected 'temperature' or 'isotonic'")


def apply(calibration: dict | None, logit: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """Calibrated probabilities (float64); ``None`` is the graph's ``sigmoid(logit)``.

    ``masks`` (``(n, 3)``) picks each window's map under ``by_modalities``.
    """
    z = np.asarray(logit, dtype=np.float64)
    if calibration is None:
        return sigmoid(z)
    if calibration["method"] == "by_modalities":
        if masks is None:
            raise ValueError("a by_modalities calibration needs the windows' modality masks")
        keys = np.array([modality_set(m) for m in masks])
        out = apply(calibration["default"], z)
        for key, c in calibration["sets"].items():
            sel = keys == key
            out[sel] = apply(c, z[sel])
        return out
    if calibration["method"] == "temperature":
        return sigmoid(z / calibration["temperature"])
    if calibration["method"] == "isotonic":
        # np.interp is constant beyond the first and last knot, like the runtime
        return np.interp(z, calibration["logits"], calibration["probabilities"])
    raise ValueError(f"calibration method {calibration['method']!r} is not known")


def cross_fitted(
    y: np.ndarray,
    logit: np.ndarray,
    masks: np.ndarray,
    method: str,
    folds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold calibrated probabilities: each fold is calibrated by a map fitted on the others.

    Folds are stratified by label and modality set, so every fit sees both classes of each set.
    """
    y, logit, masks = np.asarray(y), np.asarray(logit), np.asarray(masks)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=int)
    strata = np.array([f"{modality_set(m)}|{int(t)}" for m, t in zip(masks, y, strict=True)])
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
    out = np.empty(len(y), dtype=np.float64)
    for k in range(folds):
        test = fold == k
        c = fit(y[~test], logit[~test], method, "cross-fit", masks[~test])
        out[test] = apply(c, logit[test], masks[test])
    return out


def choose(
    y: np.ndarray,
    logit: np.ndarray,
    masks: np.ndarray,
    source: np.ndarray,
    ece,
    methods: tuple[str, ...] = METHODS,
    folds: int = 5,
    seed: int = 0,
) -> tuple[str, dict]:
    """The method whose cross-fitted validation ECE is lowest on its worst source.

    ``source`` labels each window's source and ``ece(y, p)`` scores calibration. Returns the
    method and, per method, the cross-fitted ECE per source (and the uncalibrated ECE as
    ``none``; a method that cannot be fitted on some fold has ``{"error": ...}`` and is not
    chosen) for the card.
    """
    source = np.asarray(source)
    names = sorted(set(source.tolist()))

    def per_source(p: np.ndarray) -> dict:
        return {s: float(ece(y[source == s], p[source == s])) for s in names}

    table: dict = {"none": per_source(sigmoid(logit))}
    fitted = []
    for m in methods:
        try:
            table[m] = per_source(cross_fitted(y, logit, masks, m, folds, seed))
            fitted.append(m)
        except ValueError as e:  # too few windows of a class in a fold, one isotonic knot
            table[m] = {"error": str(e)}
    if not fitted:
        raise ValueError(f"no calibration method could be cross-fitted: {table}")
    best = min(fitted, key=lambda m: (max(table[m].values()), float(np.mean(list(table[m].values())))))
    return best, table
