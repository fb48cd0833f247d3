"""EPInformer-style enhancer-gene link model: a sequence encoder and a gene-level interaction model.

The model is two parts, exported as two ONNX graphs so the daemon can cache element embeddings:

* :class:`SequenceEncoder` turns a 2-kb one-hot window ``(4, 2000)`` into a ``d_model`` (64) token:
  a 15-bp motif convolution, max-pool 10, four residual blocks of dilated convolutions (dilation
  1, 2, 4, 8), then mean- and max-pooling over positions and a linear projection.
* :class:`LinkModel` takes, per gene, the promoter and up to 60 candidates (padded), each as an
  optional sequence embedding (``sequence_mask`` says whether there is one) and the per-element
  features (``link_data.FEATURES``: distance, contact, activity, accessibility, H3K27ac). Tokens
  are the fusion of the two (a learned "no sequence" embedding stands in for a missing one) plus a
  promoter/candidate type embedding. Three pre-LayerNorm Transformer layers (4 heads) follow, with
  an explicit attention mask: the promoter attends to every present token, a candidate only to the
  promoter and to itself, and padded candidates are never attended to. The promoter's final token
  predicts expression (``log10(1 + TPM)``). The link score is the promoter's attention over the
  candidates, averaged over layers and heads, zeroed at padding and normalised per gene with
  ``p / p.sum().clamp_min(1e-9)`` (the exporter keeps ``clamp_min``; a ``+ 1e-9`` is optimised
  away and gives NaN for a gene with no candidate, see ``notes/models.md``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

MASK_BIAS = 1.0e4
"""Magnitude of the additive bias of forbidden keys (finite, so no softmax row is all ``-inf``)."""

PREDICTOR_INPUTS = [
    "promoter_embedding",
    "promoter_sequence_mask",
    "promoter_features",
    "candidate_embedding",
    "candidate_sequence_mask",
    "candidate_features",
    "candidate_mask",
]
"""Input names of the gene-level graph, in order."""
PREDICTOR_OUTPUTS = ["expression", "attention"]
"""Output names of the gene-level graph."""
ENCODER_INPUTS = ["sequence"]
"""Input name of the element encoder graph."""
ENCODER_OUTPUTS = ["embedding"]
"""Output name of the element encoder graph."""


@dataclass
class LinkModelConfig:
    """Hyper-parameters of the link model.

    Attributes
    ----------
    d_model : int
        Token and embedding width.
    heads : int
        Attention heads.
    layers : int
        Transformer layers.
    ff_mult : int
        Feed-forward width as a multiple of ``d_model``.
    dropout : float
        Dropout rate.
    features : int
        Per-element features.
    encoder_channels : int
        Channels of the sequence encoder's convolutions.
    encoder_stem_kernel : int
        Width of the motif convolution (bp).
    encoder_pool : int
        Max-pool factor after the motif convolution.
    encoder_dilations : list of int
        Dilation of each residual block.
    sequence_length : int
        Element window (bp).
    """

    d_model: int = 64
    heads: int = 4
    layers: int = 3
    ff_mult: int = 2
    dropout: float = 0.1
    features: int = 5
    encoder_channels: int = 64
    encoder_stem_kernel: int = 15
    encoder_pool: int = 10
    encoder_dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    sequence_length: int = 2000

    def to_dict(self) -> dict:
        """Plain ``dict`` of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> LinkModelConfig:
        """Build from a ``dict``, ignoring unknown keys."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in values.items() if k in names})


class ResidualDilatedBlock(nn.Module):
    """``x + conv1x1(gelu(dilated_conv3(gelu(x))))``, length preserved."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(N, C, L)``."""
        return x + self.mix(F.gelu(self.conv(F.gelu(x))))


class SequenceEncoder(nn.Module):
    """One-hot element sequence ``(N, 4, L)`` -> embedding ``(N, d_model)``.

    Parameters
    ----------
    config : LinkModelConfig
        Model hyper-parameters.
    """

    def __init__(self, config: LinkModelConfig):
        super().__init__()
        c = config.encoder_channels
        self.stem = nn.Conv1d(4, c, config.encoder_stem_kernel, padding=config.encoder_stem_kernel // 2)
        self.pool = nn.MaxPool1d(config.encoder_pool)
        self.blocks = nn.Sequential(*[ResidualDilatedBlock(c, d) for d in config.encoder_dilations])
        self.project = nn.Linear(2 * c, config.d_model)
        self.norm = nn.LayerNorm(config.d_model)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """Embed a batch of one-hot windows (channels A, C, G, T; N as all zeros)."""
        x = self.pool(F.gelu(self.stem(sequence)))
        x = F.gelu(self.blocks(x))
        pooled = torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=-1)
        return self.norm(self.project(pooled))


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention with an explicit softmax over an additive bias."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads {heads} must divide d_model {d_model}")
        self.heads = heads
        self.head_dim = d_model // heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend; returns the output ``(B, T, D)`` and the weights ``(B, H, T, T)``.

        ``bias`` is ``(B, T, T)``: 0 where query ``i`` may attend to key ``j``, ``-1e4`` otherwise.
        """
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias[:, None]
        weights = scores.softmax(dim=-1)
        y = (weights @ v).transpose(1, 2).reshape(b, t, d)
        return self.drop(self.out(y)), weights


class TransformerLayer(nn.Module):
    """Pre-LayerNorm Transformer layer that also returns its attention weights."""

    def __init__(self, d_model: int, heads: int, ff_mult: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = MaskedSelfAttention(d_model, heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer; returns the new tokens and the attention weights."""
        y, weights = self.attention(self.norm1(x), bias)
        x = x + y
        return x + self.ff(self.norm2(x)), weights


def attention_bias(candidate_mask: torch.Tensor) -> torch.Tensor:
    """Additive attention bias ``(B, T, T)`` for ``T = 1 + candidates`` tokens (promoter first).

    Query ``i`` may attend to key ``j`` when ``j`` is present and ``i`` is the promoter, or ``j``
    is the promoter, or ``i == j``. Padded candidates are never keys (their own query rows attend
    to the promoter and themselves; their outputs are not used).
    """
    b = candidate_mask.shape[0]
    present = torch.cat([torch.ones_like(candidate_mask[:, :1]), candidate_mask], dim=1)  # (B, T)
    t = present.shape[1]
    eye = torch.eye(t, dtype=present.dtype, device=present.device)
    row0 = (torch.arange(t, device=present.device) == 0).to(present.dtype)
    # structure[i, j] = 1 if i == 0 or j == 0 or i == j
    structure = torch.clamp(eye + row0[:, None] + row0[None, :], max=1.0)
    allowed = structure[None, :, :] * present[:, None, :]
    return ((allowed - 1.0) * MASK_BIAS).reshape(b, t, t)


class LinkModel(nn.Module):
    """Gene-level fusion and interaction model (the second exported graph).

    Parameters
    ----------
    config : LinkModelConfig
        Model hyper-parameters.
    """

    def __init__(self, config: LinkModelConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.feature_proj = nn.Sequential(nn.Linear(config.features, d), nn.GELU(), nn.Linear(d, d))
        self.sequence_proj = nn.Linear(d, d)
        self.no_sequence = nn.Parameter(torch.zeros(d))
        self.type_embedding = nn.Parameter(torch.zeros(2, d))
        nn.init.normal_(self.no_sequence, std=0.02)
        nn.init.normal_(self.type_embedding, std=0.02)
        self.layers = nn.ModuleList(
            [TransformerLayer(d, config.heads, config.ff_mult, config.dropout) for _ in range(config.layers)]
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))

    def tokens(self, embedding: torch.Tensor, sequence_mask: torch.Tensor, features: torch.Tensor):
        """Fuse sequence embeddings (or the "no sequence" embedding) with the features."""
        m = sequence_mask[..., None]
        seq = m * self.sequence_proj(embedding) + (1.0 - m) * self.no_sequence
        return seq + self.feature_proj(features)

    def forward(
        self,
        promoter_embedding: torch.Tensor,
        promoter_sequence_mask: torch.Tensor,
        promoter_features: torch.Tensor,
        candidate_embedding: torch.Tensor,
        candidate_sequence_mask: torch.Tensor,
        candidate_features: torch.Tensor,
        candidate_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict expression and link scores for a batch of genes.

        Parameters
        ----------
        promoter_embedding : torch.Tensor
            ``(B, D)`` encoder output for the promoter window (any values when masked).
        promoter_sequence_mask : torch.Tensor
            ``(B,)`` 1 when the promoter embedding is present.
        promoter_features : torch.Tensor
            ``(B, F)``.
        candidate_embedding : torch.Tensor
            ``(B, C, D)``.
        candidate_sequence_mask : torch.Tensor
            ``(B, C)`` 1 when the candidate's embedding is present.
        candidate_features : torch.Tensor
            ``(B, C, F)``.
        candidate_mask : torch.Tensor
            ``(B, C)`` 1 for real candidates, 0 for padding.

        Returns
        -------
        tuple of torch.Tensor
            ``expression (B,)`` and ``attention (B, C)``: the promoter's attention over the
            candidates averaged over layers and heads, 0 at padding, summing to 1 over a gene's
            real candidates (all 0 when it has none).
        """
        promoter = self.tokens(promoter_embedding, promoter_sequence_mask, promoter_features)
        candidates = self.tokens(
            candidate_embedding, candidate_sequence_mask * candidate_mask, candidate_features
        )
        x = torch.cat(
            [(promoter + self.type_embedding[0])[:, None, :], candidates + self.type_embedding[1]], dim=1
        )
        bias = attention_bias(candidate_mask)
        total = torch.zeros_like(candidate_mask)
        for layer in self.layers:
            x, weights = layer(x, bias)
            total = total + weights[:, :, 0, 1:].mean(dim=1)
        expression = self.head(self.norm(x[:, 0]))[:, 0]
        p = total / len(self.layers) * candidate_mask
        attention = p / p.sum(dim=-1, keepdim=True).clamp_min(1e-9)
        return expression, attention


class LinkNetwork(nn.Module):
    """Encoder + gene model for training: encodes only the elements that have sequence.

    Parameters
    ----------
    config : LinkModelConfig
        Model hyper-parameters.
    """

    def __init__(self, config: LinkModelConfig):
        super().__init__()
        self.config = config
        self.encoder = SequenceEncoder(config)
        self.predictor = LinkModel(config)

    def forward(
        self,
        one_hot: torch.Tensor | None,
        promoter_sequence: torch.Tensor,
        promoter_features: torch.Tensor,
        candidate_sequence: torch.Tensor,
        candidate_features: torch.Tensor,
        candidate_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run on a batch whose sequences are rows of ``one_hot``.

        Parameters
        ----------
        one_hot : torch.Tensor or None
            ``(S, 4, L)`` the distinct windows the batch refers to (``None`` when none).
        promoter_sequence : torch.Tensor
            ``(B,)`` int64 row of ``one_hot`` per promoter, -1 for none.
        promoter_features : torch.Tensor
            ``(B, F)``.
        candidate_sequence : torch.Tensor
            ``(B, C)`` int64 row of ``one_hot`` per candidate, -1 for none.
        candidate_features : torch.Tensor
            ``(B, C, F)``.
        candidate_mask : torch.Tensor
            ``(B, C)``.
        """
        d = self.config.d_model
        b, c = candidate_mask.shape
        if one_hot is not None and len(one_hot):
            table = torch.cat([self.encoder(one_hot), promoter_features.new_zeros(1, d)], dim=0)
        else:
            table = promoter_features.new_zeros(1, d)
        last = table.shape[0] - 1
        p_idx = torch.where(promoter_sequence >= 0, promoter_sequence, last)
        c_idx = torch.where(candidate_sequence >= 0, candidate_sequence, last)
        return self.predictor(
            table[p_idx],
            (promoter_sequence >= 0).to(promoter_features.dtype),
            promoter_features,
            table[c_idx.reshape(-1)].reshape(b, c, d),
            (candidate_sequence >= 0).to(promoter_features.dtype),
            candidate_features,
            candidate_mask,
        )


def parameter_count(module: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in module.parameters())


def encoder_flops(config: LinkModelConfig) -> int:
    """Multiply-add FLOPs (x2) of one encoder call on one window (convolutions and projection)."""
    c, L, k = config.encoder_channels, config.sequence_length, config.encoder_stem_kernel
    pooled = L // config.encoder_pool
    flops = 2 * 4 * c * k * L
    flops += len(config.encoder_dilations) * (2 * c * c * 3 * pooled + 2 * c * c * pooled)
    flops += 2 * 2 * c * config.d_model
    return flops


def example_predictor_inputs(genes: int = 3, candidates: int = 5, config: LinkModelConfig | None = None):
    """Random inputs for tracing the gene-level graph (one gene with no real candidate)."""
    config = config or LinkModelConfig()
    g = torch.Generator().manual_seed(0)
    d, f = config.d_model, config.features
    mask = (torch.rand(genes, candidates, generator=g) > 0.3).float()
    mask[0] = 0.0
    return (
        torch.randn(genes, d, generator=g),
        torch.ones(genes),
        torch.rand(genes, f, generator=g),
        torch.randn(genes, candidates, d, generator=g),
        (torch.rand(genes, candidates, generator=g) > 0.5).float(),
        torch.rand(genes, candidates, f, generator=g),
        mask,
    )
