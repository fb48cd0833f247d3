"""Training losses: binary cross-entropy and knowledge distillation for binary classifiers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def alpha_schedule(progress: float, start: float = 0.1, end: float = 1.0) -> float:
    """Cosine-annealed weight of the hard-label loss.

    Parameters
    ----------
    progress : float
        Fraction of distillation steps done, clipped to ``[0, 1]``.
    start, end : float
        Values at ``progress`` 0 and 1.

    Returns
    -------
    float
        ``start + (end - start) * (1 - cos(pi * progress)) / 2``.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return start + (end - start) * (1.0 - math.cos(math.pi * p)) / 2.0


def binary_kl(teacher_logit: torch.Tensor, student_logit: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean ``KL(teacher_T || student_T)`` between Bernoulli distributions at temperature ``T``.

    ``p_T = sigmoid(logit / T)``; ``KL = p log(p/q) + (1-p) log((1-p)/(1-q))``, computed with
    log-sigmoids for stability.
    """
    t = teacher_logit / temperature
    s = student_logit / temperature
    p = torch.sigmoid(t)
    kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1.0 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean()


def distillation_loss(
    student_logit: torch.Tensor,
    teacher_logit: torch.Tensor,
    target: torch.Tensor,
    alpha: float,
    temperature: float = 4.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``L = alpha * BCE(student, y) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``.

    Parameters
    ----------
    student_logit, teacher_logit : torch.Tensor
        Logits ``(B,)``; the teacher's should carry no gradient.
    target : torch.Tensor
        Labels ``(B,)`` in ``{0, 1}``.
    alpha : float
        Weight of the hard-label loss; ``beta = 1 - alpha``.
    temperature : float
        Softening temperature ``T``.

    Returns
    -------
    tuple of torch.Tensor
        Total loss, BCE term and KL term (the last two unweighted).
    """
    bce = F.binary_cross_entropy_with_logits(student_logit, target)
    kl = binary_kl(teacher_logit, student_logit, temperature)
    total = alpha * bce + (1.0 - alpha) * temperature**2 * kl
    return total, bce, kl
