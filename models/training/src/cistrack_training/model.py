"""AttLight-Enhancer: multimodal cross-attention enhancer classifier (teacher and student).

A 2,000-bp window is read as three modalities: DNA one-hot ``(4, 2000)``, H3K27ac ``(200,)`` and
accessibility ``(200,)``. Each is projected to ``L = 200`` tokens of width ``D``: the sequence by a
convolutional stem with an overall stride of 10 (motif convolution, max-pool 10, token
convolution), each signal by a small convolution over its bins. Learned positional and modality
embeddings are added. In one multi-head cross-attention layer every modality's tokens query the
concatenation of all three modalities' tokens (600 keys); keys of missing modalities are excluded
(additive ``-1e4`` bias). The attention weights are computed explicitly (matmul + softmax, not a
fused kernel) so that the share of attention mass each modality's keys receive can be returned.
The fused tokens are average-pooled along the window (``encoder_pool``, to keep the student near
0.4 GFLOP per window), pass a small pre-LN Transformer encoder, are mean-pooled over the present
modalities' tokens, and an MLP gives the logit.

A missing modality (mask 0) cannot change the outputs: its tokens are replaced by their
embeddings alone before attention, they are never attention keys and they are not pooled. With
all three modalities missing every output stays finite: the softmax of an all-masked row is a
uniform average, and the pooled features and shares are divided by ``clamp_min``-ed counts (which
the ONNX exporter keeps; a ``+ eps`` would be optimised away, see ``notes/models.md``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_MODALITIES = 3
TOKENS = 200
WINDOW_LENGTH = 2000
MASK_BIAS = 1.0e4
"""Magnitude of the additive attention bias of missing keys (finite, so no row is all ``-inf``)."""


@dataclass
class ModelConfig:
    """Hyper-parameters of an AttLight-Enhancer model.

    Attributes
    ----------
    d_model : int
        Token width ``D``.
    heads : int
        Attention heads (cross-attention and encoder).
    encoder_layers : int
        Pre-LN Transformer encoder layers after the cross-attention.
    dropout : float
        Dropout rate.
    stem_channels : int
        Motif filters of the sequence stem's first convolution.
    stem_kernel : int
        Width of the motif convolution (bp).
    signal_channels : int
        Hidden channels of each signal stem.
    signal_kernel : int
        Kernel width of the signal convolutions (bins).
    ff_mult : int
        Encoder feed-forward width as a multiple of ``d_model``.
    encoder_pool : int
        Average-pool factor along each modality's tokens before the encoder (200 / pool tokens
        per modality reach the encoder).
    sequence_token_mask : bool
        Treat sequence tokens whose 10 bases hold no A/C/G/T (``N`` runs, contig ends, the padding
        around a short record) like a missing modality's: embeddings only, never attention keys,
        not pooled. Off in 0.1.0/0.2.0, which pooled all 200 sequence tokens (a 200-bp record in a
        2-kb window then carried 20 of 600 pooled tokens). A window whose bases are all present
        gives the same output either way.
    both_strands : bool
        The exported graph scores the window and its reverse complement (sequence reversed and
        complemented, signal bins reversed) and returns the mean logit; the shares are the mean
        of both strands' shares. Training sees both strands through augmentation.
    sequence_blocks : int
        Residual dilated convolutions over the sequence tokens after the stem (dilation 2, 4,
        8, ...; kernel 3): each token then sees its neighbours' motif content before the
        cross-attention (block ``k`` widens the reach by ``2^k`` tokens on each side). 0 in
        0.1.0/0.2.0, whose stem gave each token only its own 30 bp.
    composition_k : int
        With ``k > 0``, the window's k-mer composition (the frequency of every 1- to k-mer among
        the positions whose k bases are all A/C/G/T, :class:`Composition`) is projected to ``D``
        and added to the pooled features before the head, gated by the sequence's modality
        mask. 0 (off) in 0.1.0/0.2.0. On the iEnhancer split a logistic regression on 1- to
        5-mer frequencies alone out-scored the 0.3.0 student on validation (0.898 against
        0.876; ``kmer_baseline``): the stem's max-pooled motifs lose composition.
    moe_experts : int
        With ``E > 0``, each encoder layer's feed-forward block is a sparse mixture of ``E``
        experts (:class:`SparseMoE`, each as wide as the dense block) and every token is routed
        to its ``moe_top_k`` best; 0 (a dense block) in every shipped model so far.
    moe_top_k : int
        Experts per token when ``moe_experts > 0``.
    """

    d_model: int = 128
    heads: int = 4
    encoder_layers: int = 1
    dropout: float = 0.3
    stem_channels: int = 128
    stem_kernel: int = 15
    signal_channels: int = 64
    signal_kernel: int = 5
    ff_mult: int = 4
    encoder_pool: int = 4
    sequence_token_mask: bool = False
    both_strands: bool = False
    sequence_blocks: int = 0
    composition_k: int = 0
    moe_experts: int = 0
    moe_top_k: int = 1

    def to_dict(self) -> dict:
        """Plain ``dict`` of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        """Build from a ``dict``, ignoring unknown keys."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in values.items() if k in names})


class MaskedAttention(nn.Module):
    """Multi-head attention with an explicit, key-masked softmax.

    Parameters
    ----------
    d_model : int
        Token width.
    heads : int
        Number of heads; must divide ``d_model``.
    dropout : float
        Dropout on the output projection.
    """

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads {heads} must divide d_model {d_model}")
        self.heads = heads
        self.head_dim = d_model // heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, key_mask: torch.Tensor, fast: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from every token to the present tokens.

        Parameters
        ----------
        x : torch.Tensor
            Tokens ``(B, N, D)``.
        key_mask : torch.Tensor
            ``(B, N)``, 1 for tokens that may be attended to, 0 for missing ones.
        fast : bool
            Use PyTorch's fused attention and return no weights (training; same result up to
            rounding).

        Returns
        -------
        tuple
            Output ``(B, N, D)`` and attention weights ``(B, H, N, N)`` (``None`` when ``fast``).
            Missing keys get a ``-1e4`` additive bias, so their weights underflow to exactly 0
            whenever a row has a present key; a row with no present key is a finite uniform
            average (its query is then ignored downstream: see :class:`AttLightEnhancer`).
        """
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        bias = ((key_mask - 1.0) * MASK_BIAS)[:, None, None, :]
        if fast:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            weights = None
        else:
            # NOTE: the key bias rides along as one extra feature of the dot product
            # ([q * scale, 1] . [k, bias]), which saves ONNX Runtime a full pass over the
            # (B, H, N, N) scores compared with adding it afterwards.
            ones = torch.ones_like(q[..., :1])
            q_ext = torch.cat([q * (1.0 / math.sqrt(self.head_dim)), ones], dim=-1)
            k_ext = torch.cat([k, bias.transpose(-1, -2).expand(b, self.heads, n, 1)], dim=-1)
            weights = torch.softmax(torch.matmul(q_ext, k_ext.transpose(-1, -2)), dim=-1)
            y = torch.matmul(weights, v)
        y = y.transpose(1, 2).reshape(b, n, d)
        return self.drop(self.out(y)), weights


class SparseMoE(nn.Module):
    """Sparse mixture-of-experts feed-forward block (the scMoE design for sparse single-cell input).

    A linear router gives each token a softmax over ``E`` experts; the token's output is the
    sum of its ``k`` most probable experts' outputs, weighted by their renormalised
    probabilities (top-k routing). Each expert is a two-layer GELU MLP ``D → H → D``.

    The graph evaluates every expert on every token and zeroes the unselected ones' weights:
    ONNX has no cheap per-token dispatch, so the exported model's compute is ``E`` dense blocks
    while only ``k`` of them shape each output (``k/E`` of the expert parameters are active
    per token). :attr:`balance` holds the last training forward's load-balancing loss (Switch
    Transformer: ``E · Σ_e f_e · P_e`` over the usable tokens, with ``f_e`` the share of routing
    slots given to expert ``e`` and ``P_e`` its mean router probability; 1 when balanced).
    """

    def __init__(self, d_model: int, hidden: int, experts: int, top_k: int, dropout: float):
        super().__init__()
        if not 1 <= top_k <= experts:
            raise ValueError(f"moe_top_k {top_k} must be between 1 and moe_experts {experts}")
        self.experts, self.top_k = experts, top_k
        self.router = nn.Linear(d_model, experts)
        bound1, bound2 = 1.0 / math.sqrt(d_model), 1.0 / math.sqrt(hidden)
        self.w1 = nn.Parameter(torch.empty(experts, d_model, hidden).uniform_(-bound1, bound1))
        self.b1 = nn.Parameter(torch.empty(experts, hidden).uniform_(-bound1, bound1))
        self.w2 = nn.Parameter(torch.empty(experts, hidden, d_model).uniform_(-bound2, bound2))
        self.b2 = nn.Parameter(torch.empty(experts, d_model).uniform_(-bound2, bound2))
        self.drop = nn.Dropout(dropout)
        self.balance = torch.zeros(())

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Router probabilities ``(B, N, E)`` and the top-k gates (zero off the top k)."""
        probs = torch.softmax(self.router(x), dim=-1)
        top_p, top_i = probs.topk(self.top_k, dim=-1)
        gates = torch.zeros_like(probs).scatter(-1, top_i, top_p / top_p.sum(-1, keepdim=True))
        return probs, gates

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """Apply to tokens ``(B, N, D)``; ``token_mask (B, N)`` weights the balancing loss."""
        probs, gates = self.gates(x)
        h = self.drop(F.gelu(torch.einsum("bnd,edh->bneh", x, self.w1) + self.b1))
        y = torch.einsum("bneh,ehd->bned", h, self.w2) + self.b2
        out = (y * gates[..., None]).sum(dim=2)
        if self.training:
            w = token_mask[..., None]
            total = w.sum().clamp_min(1.0)
            routed = ((gates > 0).to(x.dtype) * w).sum(dim=(0, 1)) / (total * self.top_k)
            mean_prob = (probs * w).sum(dim=(0, 1)) / total
            self.balance = self.experts * (routed * mean_prob).sum()
        return self.drop(out)


class EncoderLayer(nn.Module):
    """Pre-LN Transformer encoder layer with key masking (a dense or a sparse-MoE feed-forward)."""

    def __init__(
        self, d_model: int, heads: int, ff_mult: int, dropout: float, experts: int = 0, top_k: int = 1
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MaskedAttention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        if experts > 0:
            self.ff = SparseMoE(d_model, ff_mult * d_model, experts, top_k, dropout)
        else:
            self.ff = nn.Sequential(
                nn.Linear(d_model, ff_mult * d_model),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(ff_mult * d_model, d_model),
                nn.Dropout(dropout),
            )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, fast: bool = False) -> torch.Tensor:
        """Apply the layer to tokens ``(B, N, D)`` with key mask ``(B, N)``."""
        y, _ = self.attn(self.norm1(x), key_mask, fast)
        x = x + y
        if isinstance(self.ff, SparseMoE):
            return x + self.ff(self.norm2(x), key_mask)
        return x + self.ff(self.norm2(x))


class SignalStem(nn.Module):
    """Project 200 signal bins to 200 tokens: two convolutions over bins."""

    def __init__(self, d_model: int, channels: int, kernel: int):
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(channels, d_model, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 200)`` -> ``(B, 200, D)``."""
        return self.conv2(F.gelu(self.conv1(x.unsqueeze(1)))).transpose(1, 2)


class SequenceStem(nn.Module):
    """Project one-hot DNA ``(B, 4, 2000)`` to 200 tokens.

    Motif conv + ReLU, max-pool 10, token conv, then ``blocks`` residual dilated token
    convolutions (``x + conv(GELU(x))``, dilation ``2^(k+1)``).
    """

    def __init__(self, d_model: int, channels: int, kernel: int, blocks: int = 0):
        super().__init__()
        self.motif = nn.Conv1d(4, channels, kernel, padding=kernel // 2)
        self.pool = nn.MaxPool1d(WINDOW_LENGTH // TOKENS)
        self.token = nn.Conv1d(channels, d_model, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Conv1d(d_model, d_model, 3, padding=2 ** (k + 1), dilation=2 ** (k + 1)) for k in range(blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 4, 2000)`` -> ``(B, 200, D)``."""
        x = self.token(self.pool(F.relu(self.motif(x))))
        for conv in self.blocks:
            x = x + conv(F.gelu(x))
        return x.transpose(1, 2)


class Composition(nn.Module):
    """k-mer frequencies of one-hot DNA, ``k`` = 1..``k_max``, as fixed convolutions.

    Filter ``m`` of the width-``k`` convolution has weight 1 at (base ``j`` of k-mer ``m``,
    offset ``j``), so it reads ``k`` exactly where the window holds that k-mer and at most
    ``k - 1`` elsewhere (``N`` is all-zero); ``relu(x - (k - 1))`` is the indicator. Each
    block is the indicators' sum over positions divided by the number of positions with ``k``
    bases (``clamp_min(1)``: 0 for a window without bases), times ``4^k`` minus 1, so a uniform
    composition reads 0. Output ``(B, 4 + 16 + ... + 4^k_max)``; no trainable weights.
    """

    def __init__(self, k_max: int):
        super().__init__()
        self.k_max = k_max
        for k in range(1, k_max + 1):
            codes = np.arange(4**k)
            weight = np.zeros((4**k, 4, k), dtype=np.float32)
            for j in range(k):
                base = (codes // 4 ** (k - 1 - j)) % 4
                weight[codes, base, j] = 1.0
            self.register_buffer(f"kmers{k}", torch.from_numpy(weight), persistent=False)

    @property
    def width(self) -> int:
        """Number of features: ``4 + 16 + ... + 4^k_max``."""
        return sum(4**k for k in range(1, self.k_max + 1))

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """``(B, 4, 2000)`` -> ``(B, width)``."""
        blocks = []
        for k in range(1, self.k_max + 1):
            hit = F.relu(F.conv1d(sequence, getattr(self, f"kmers{k}")) - (k - 1))  # (B, 4^k, L-k+1)
            counts = hit.sum(dim=-1)
            total = counts.sum(dim=-1, keepdim=True)
            blocks.append(counts / total.clamp_min(1.0) * float(4**k) - (total > 0).to(counts.dtype))
        return torch.cat(blocks, dim=-1)


class AttLightEnhancer(nn.Module):
    """The AttLight-Enhancer model.

    Parameters
    ----------
    config : ModelConfig
        Hyper-parameters.

    Notes
    -----
    :meth:`forward` is the exported graph: inputs ``sequence (B, 4, 2000)``,
    ``h3k27ac (B, 200)``, ``accessibility (B, 200)``, ``modality_mask (B, 3)`` (all float32);
    outputs ``logit (B,)``, ``probability (B,)`` and ``modality_share (B, 3)``.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        if TOKENS % c.encoder_pool:
            raise ValueError(f"encoder_pool {c.encoder_pool} must divide {TOKENS}")
        self.config = c
        self.sequence_stem = SequenceStem(c.d_model, c.stem_channels, c.stem_kernel, c.sequence_blocks)
        self.h3k27ac_stem = SignalStem(c.d_model, c.signal_channels, c.signal_kernel)
        self.accessibility_stem = SignalStem(c.d_model, c.signal_channels, c.signal_kernel)
        self.position = nn.Parameter(torch.randn(TOKENS, c.d_model) * 0.02)
        self.modality = nn.Parameter(torch.randn(N_MODALITIES, c.d_model) * 0.02)
        self.cross_norm = nn.LayerNorm(c.d_model)
        self.cross_attention = MaskedAttention(c.d_model, c.heads, c.dropout)
        self.encoder = nn.ModuleList(
            EncoderLayer(c.d_model, c.heads, c.ff_mult, c.dropout, c.moe_experts, c.moe_top_k)
            for _ in range(c.encoder_layers)
        )
        self.final_norm = nn.LayerNorm(c.d_model)
        if c.composition_k > 0:
            self.composition = Composition(c.composition_k)
            self.composition_proj = nn.Sequential(
                nn.Dropout(c.dropout), nn.Linear(self.composition.width, c.d_model)
            )
        self.head = nn.Sequential(
            nn.Linear(c.d_model, c.d_model), nn.GELU(), nn.Dropout(c.dropout), nn.Linear(c.d_model, 1)
        )

    def _run(
        self,
        sequence: torch.Tensor,
        h3k27ac: torch.Tensor,
        accessibility: torch.Tensor,
        modality_mask: torch.Tensor,
        fast: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b = sequence.shape[0]
        mask = modality_mask.to(sequence.dtype)
        # (B, 3, L): 1 where a token may be used; the modality mask, and (when configured) for
        # sequence tokens whether their 10 bases hold any A/C/G/T
        per_token = mask[:, :, None].expand(b, N_MODALITIES, TOKENS)
        if self.config.sequence_token_mask:
            has_base = sequence.sum(dim=1).reshape(b, TOKENS, WINDOW_LENGTH // TOKENS).amax(dim=-1)
            per_token = torch.cat(
                [per_token[:, :1] * has_base.clamp(0.0, 1.0)[:, None], per_token[:, 1:]], dim=1
            )
        stems = torch.stack(
            [
                self.sequence_stem(sequence),
                self.h3k27ac_stem(h3k27ac),
                self.accessibility_stem(accessibility),
            ],
            dim=1,
        )  # (B, 3, L, D)
        # A missing modality keeps only its embeddings, so its input values cannot leak anywhere.
        tokens = stems * per_token[..., None] + self.position[None, None] + self.modality[None, :, None]
        d = tokens.shape[-1]
        x = tokens.reshape(b, N_MODALITIES * TOKENS, d)
        token_mask = per_token.reshape(b, N_MODALITIES * TOKENS)  # (B, 600)
        y, weights = self.cross_attention(self.cross_norm(x), token_mask, fast)
        x = x + y
        share = None
        if weights is not None:
            # (B, H, Q, 600) -> mass on each modality's keys, mean over heads -> (B, Q, 3)
            per_query = weights.reshape(b, weights.shape[1], weights.shape[2], N_MODALITIES, TOKENS)
            per_query = per_query.sum(dim=-1).mean(dim=1)
            share = (per_query * token_mask[:, :, None]).sum(dim=1)
            share = share / token_mask.sum(dim=1, keepdim=True).clamp_min(1.0)
        pool = self.config.encoder_pool
        per_modality = TOKENS // pool
        if self.config.sequence_token_mask:
            # mean over the usable tokens of each group of `pool` (a group with none is masked)
            m = per_token.reshape(b, N_MODALITIES, per_modality, pool)
            x = (x.reshape(b, N_MODALITIES, per_modality, pool, d) * m[..., None]).sum(dim=3)
            count = m.sum(dim=3)
            x = x / count.clamp_min(1.0)[..., None]
            pooled_mask = (count > 0).to(x.dtype).reshape(b, N_MODALITIES * per_modality)
        else:
            x = x.reshape(b, N_MODALITIES, per_modality, pool, d).mean(dim=3)
            pooled_mask = mask.repeat_interleave(per_modality, dim=1)
        x = x.reshape(b, N_MODALITIES * per_modality, d)
        for layer in self.encoder:
            x = layer(x, pooled_mask, fast)
        x = self.final_norm(x)
        pooled = (x * pooled_mask[:, :, None]).sum(dim=1) / pooled_mask.sum(dim=1, keepdim=True).clamp_min(
            1.0
        )
        if self.config.composition_k > 0:
            pooled = pooled + self.composition_proj(self.composition(sequence)) * mask[:, :1]
        logit = self.head(pooled).squeeze(-1)
        return logit, share

    def balance_loss(self) -> torch.Tensor:
        """The last training forward's load-balancing loss, summed over the sparse-MoE layers.

        0 for a dense model.
        """
        losses = [layer.ff.balance for layer in self.encoder if isinstance(layer.ff, SparseMoE)]
        return torch.stack(losses).sum() if losses else torch.zeros(())

    def forward(
        self,
        sequence: torch.Tensor,
        h3k27ac: torch.Tensor,
        accessibility: torch.Tensor,
        modality_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Score windows.

        Parameters
        ----------
        sequence : torch.Tensor
            One-hot DNA ``(B, 4, 2000)``, channels A, C, G, T.
        h3k27ac, accessibility : torch.Tensor
            Normalised signal bins ``(B, 200)``.
        modality_mask : torch.Tensor
            ``(B, 3)``, 1 = present, order sequence, h3k27ac, accessibility.

        Returns
        -------
        tuple of torch.Tensor
            ``logit (B,)``, ``probability (B,)``, ``modality_share (B, 3)``.
        """
        logit, share = self._strands(sequence, h3k27ac, accessibility, modality_mask, fast=False)
        return logit, torch.sigmoid(logit), share

    def logits(
        self,
        sequence: torch.Tensor,
        h3k27ac: torch.Tensor,
        accessibility: torch.Tensor,
        modality_mask: torch.Tensor,
        fast: bool = True,
    ) -> torch.Tensor:
        """Logits only (training path; ``fast`` uses fused attention, see :class:`MaskedAttention`).

        One strand only, whatever ``both_strands`` says: training augments with reverse
        complements (:func:`reverse_complement`); :meth:`strand_logits` is the inference rule.
        """
        return self._run(sequence, h3k27ac, accessibility, modality_mask, fast=fast)[0]

    def strand_logits(
        self,
        sequence: torch.Tensor,
        h3k27ac: torch.Tensor,
        accessibility: torch.Tensor,
        modality_mask: torch.Tensor,
        fast: bool = True,
    ) -> torch.Tensor:
        """Logits as the exported graph computes them (both strands averaged when configured)."""
        return self._strands(sequence, h3k27ac, accessibility, modality_mask, fast)[0]

    def _strands(
        self,
        sequence: torch.Tensor,
        h3k27ac: torch.Tensor,
        accessibility: torch.Tensor,
        modality_mask: torch.Tensor,
        fast: bool,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``_run`` under the strand rule (the one place it is written).

        With ``both_strands``, the window and its reverse complement go through as one batch of 2n
        rows (one copy of every weight in the exported graph, so the int8 quantiser sees each
        weight matmul once), and their logits and shares are averaged.
        """
        if not self.config.both_strands:
            return self._run(sequence, h3k27ac, accessibility, modality_mask, fast)
        n = sequence.shape[0]
        rc = reverse_complement(sequence, h3k27ac, accessibility)
        logits, shares = self._run(
            torch.cat([sequence, rc[0]]),
            torch.cat([h3k27ac, rc[1]]),
            torch.cat([accessibility, rc[2]]),
            torch.cat([modality_mask, modality_mask]),
            fast,
        )
        share = None if shares is None else 0.5 * (shares[:n] + shares[n:])
        return 0.5 * (logits[:n] + logits[n:]), share


def reverse_complement(
    sequence: torch.Tensor, h3k27ac: torch.Tensor, accessibility: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same window read on the other strand.

    With channels A, C, G, T, reversing the channel axis complements (A<->T, C<->G) and reversing
    the length axis reverses; the signal bins are reversed. Bases other than A/C/G/T stay zeros.
    """
    return sequence.flip(1, 2), h3k27ac.flip(1), accessibility.flip(1)


class MotifPretrainer(nn.Module):
    """Sequence-only network used to warm-start the motif convolution (see ``train.pretrain_motifs``).

    A :class:`SequenceStem` followed by GELU, mean pooling over the 200 tokens and a linear layer.

    Parameters
    ----------
    channels : int
        Motif filters (must equal the target models' ``stem_channels``).
    kernel : int
        Motif width (must equal the target models' ``stem_kernel``).
    d_model : int
        Token width of the pretraining stem (its token convolution is not transferred).
    """

    def __init__(self, channels: int, kernel: int, d_model: int = 128):
        super().__init__()
        self.stem = SequenceStem(d_model, channels, kernel)
        self.out = nn.Linear(d_model, 1)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """Logit ``(B,)`` from one-hot DNA ``(B, 4, 2000)``."""
        return self.out(F.gelu(self.stem(sequence)).mean(dim=1)).squeeze(-1)


def jaspar_filters(
    probabilities: list[np.ndarray], channels: int, kernel: int, seed: int, scale: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Motif-convolution weights from JASPAR base probabilities (a real-data warm start).

    ``channels`` motifs are drawn without replacement (seeded) from ``probabilities`` (each
    ``(length, 4)``, A, C, G, T). Each becomes its log2-odds against a uniform background,
    cut to its most informative ``kernel``-wide stretch when longer, zero-padded in the middle of
    the filter when shorter, times ``scale``; the bias is ``-0.6 ×`` the best score, so a filter
    responds (after the ReLU) only to a good match.

    Returns
    -------
    tuple of torch.Tensor
        Weight ``(channels, 4, kernel)`` and bias ``(channels,)`` of a ``Conv1d(4, channels, kernel)``.
    """
    if len(probabilities) < channels:
        raise ValueError(f"{len(probabilities)} motifs for {channels} filters")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(probabilities), channels, replace=False)
    weight = np.zeros((channels, 4, kernel), dtype=np.float64)
    for i, j in enumerate(chosen):
        log_odds = np.log2(np.clip(probabilities[j], 1e-3, 1.0) / 0.25)  # (length, 4)
        length = len(log_odds)
        if length > kernel:
            info = (probabilities[j] * log_odds).sum(1)
            best = int(np.argmax(np.convolve(info, np.ones(kernel), mode="valid")))
            log_odds = log_odds[best : best + kernel]
            length = kernel
        lo = (kernel - length) // 2
        weight[i, :, lo : lo + length] = log_odds.T
    weight *= scale
    bias = -0.6 * weight.max(axis=1).sum(axis=1)
    return torch.tensor(weight, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def active_parameter_count(model: nn.Module) -> int:
    """Trainable parameters that shape one token's output.

    A sparse-MoE layer's experts count ``k/E`` (its router counts whole); equal to
    :func:`parameter_count` for a dense model.
    """
    total = parameter_count(model)
    for m in model.modules():
        if isinstance(m, SparseMoE):
            experts = sum(p.numel() for p in (m.w1, m.b1, m.w2, m.b2))
            total -= experts * (m.experts - m.top_k) // m.experts
    return total


def flops_per_window(model: AttLightEnhancer) -> float:
    """Floating-point operations of one window's forward pass (export graph), as counted by PyTorch.

    Uses :class:`torch.utils.flop_counter.FlopCounterMode`, which counts matrix multiplications and
    convolutions (2 FLOPs per multiply-add); element-wise work is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    inputs = example_inputs(1)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    model.train(was_training)
    return float(counter.get_total_flops())


def example_inputs(batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random valid inputs (one-hot sequence, signals in [0, 3], all modalities present)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (batch, WINDOW_LENGTH), generator=g)
    sequence = F.one_hot(idx, 4).transpose(1, 2).float()
    h3k27ac = torch.rand(batch, TOKENS, generator=g) * 3
    accessibility = torch.rand(batch, TOKENS, generator=g) * 3
    mask = torch.ones(batch, N_MODALITIES)
    return sequence, h3k27ac, accessibility, mask
