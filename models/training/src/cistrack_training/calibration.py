"""Probability calibration fitted on a validation split (``model.json`` ``calibration``).

Two maps from logit to probability, both applied by the Rust runtime
(``src/model/calibration.rs``, the same formulas):

* ``temperature``: ``sigmoid(logit / T)``, ``T`` minimising the negative log-likelihood;
* ``isotonic``: the pool-adjacent-violators fit of the labels on the logits, stored as knots
  ``(logit, probability)`` and applied by linear interpolation between knots, constant beyond.
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


def fit(y: np.ndarray, logit: np.ndarray, method: str, fitted_on: str) -> dict:
    """The ``model.json`` ``calibration`` object for ``method`` (``temperature`` or ``isotonic``)."""
    if method == "temperature":
        return {"method": "temperature", "temperature": fit_temperature(y, logit), "fitted_on": fitted_on}
    if method == "isotonic":
        xs, ps = fit_isotonic(y, logit)
        return {"method": "isotonic", "logits": xs, "probabilities": ps, "fitted_on": fitted_on}
    raise ValueError(f"calibration method {method!r}: expected 'temperature' or 'isotonic'")


def apply(calibration: dict | None, logit: np.ndarray) -> np.ndarray:
    """Calibrated probabilities (float64); ``None`` is the graph's ``sigmoid(logit)``."""
    z = np.asarray(logit, dtype=np.float64)
    if calibration is None:
        return sigmoid(z)
    if calibration["method"] == "temperature":
        return sigmoid(z / calibration["temperature"])
    if calibration["method"] == "isotonic":
        # np.interp is constant beyond the first and last knot, like the runtime
        return np.interp(z, calibration["logits"], calibration["probabilities"])
    raise ValueError(f"calibration method {calibration['method']!r} is not known")
