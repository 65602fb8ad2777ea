"""The one-layer transformer of eq. 4.1, in one sitting.

    f(x) = [W_Eᵀ W_V attn(W_E χ(x))]_{:,L},   attn(U) = U · σ((W_K U)ᵀ (W_Q U) / √d_a)

σ is the column-wise softmax, so column L of attn(U) is Σ_i U_i · softmax_i(⟨W_K U_i, W_Q U_L⟩/√d_a):
only the last query is needed, and ``forward`` computes just that (``forward_full`` is the
straightforward every-position formulation, kept for tests and the benchmark). Tied embeddings,
no residual, no normalisation, no causal mask (the paper's attention sees the whole context).

Shapes follow the paper: W_E is (d, V), W_K and W_Q are (d_a, d), W_V is (d, d).

Initialisation (ours; the paper does not give one): every entry of W_E, W_K, W_Q, W_V is
N(0, 1/d), so embedding columns have norm ≈ 1 and random columns are nearly orthogonal when
d is large (the over-parameterised regime of Sec. 5.3). ``freeze_value`` sets W_V = I and keeps it;
``freeze_embedding`` keeps the Gaussian W_E; ``uniform_attention`` sets W_K = W_Q = 0 and keeps them,
so every position gets weight 1/L.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.lca.config import ModelConfig

__all__ = ["ModelConfig", "OneLayerTransformer"]


class OneLayerTransformer(nn.Module):
    """Eq. 4.1 with parameters named as in the paper: ``W_E``, ``W_K``, ``W_Q``, ``W_V``."""

    def __init__(self, V: int, cfg: ModelConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.V, self.cfg = V, cfg
        d, d_a = cfg.d, cfg.d_a

        def gauss(*shape):
            return torch.randn(*shape, generator=generator) / math.sqrt(d)

        self.W_E = nn.Parameter(gauss(d, V), requires_grad=not cfg.freeze_embedding)
        self.W_K = nn.Parameter(gauss(d_a, d), requires_grad=not cfg.uniform_attention)
        self.W_Q = nn.Parameter(gauss(d_a, d), requires_grad=not cfg.uniform_attention)
        self.W_V = nn.Parameter(gauss(d, d), requires_grad=not cfg.freeze_value)
        with torch.no_grad():
            if cfg.uniform_attention:
                self.W_K.zero_()
                self.W_Q.zero_()
            if cfg.freeze_value:
                self.W_V.copy_(torch.eye(d))

    def _last_attention(self, U: torch.Tensor) -> torch.Tensor:
        k = U @ self.W_K.T                                  # (B, L, d_a)
        q = U[:, -1] @ self.W_Q.T                           # (B, d_a): the last query only
        return (torch.einsum("bld,bd->bl", k, q) / math.sqrt(self.cfg.d_a)).softmax(dim=1)

    def attention_last(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) attention weights of the last position over the context: column L of σ(·)."""
        return self._last_attention(F.embedding(x, self.W_E.T))

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h(x) = [attn(W_E χ(x))]_{:,L} (B, d) and the attention weights (B, L)."""
        U = F.embedding(x, self.W_E.T)                                   # (B, L, d): columns W_E χ(x)
        a = self._last_attention(U)
        return torch.einsum("bl,bld->bd", a, U), a

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """Logits f(x) (B, V) at the last position; with ``return_attention`` also (B, L) weights."""
        h, a = self.hidden(x)
        logits = (h @ self.W_V.T) @ self.W_E                # W_Eᵀ W_V h, batched as rows
        return (logits, a) if return_attention else logits

    def attention_full(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, L) σ((W_K U)ᵀ(W_Q U)/√d_a): entry [b, i, j] is the weight of key i for query j."""
        U = F.embedding(x, self.W_E.T)
        k = U @ self.W_K.T
        q = U @ self.W_Q.T
        return (k @ q.transpose(1, 2) / math.sqrt(self.cfg.d_a)).softmax(dim=1)

    def forward_full(self, x: torch.Tensor) -> torch.Tensor:
        """The straightforward formulation: attention and outputs for every position, then the
        last column. Same result as ``forward``; L times the work. For tests and bench/."""
        U = F.embedding(x, self.W_E.T)                                   # (B, L, d)
        A = self.attention_full(x)                          # (B, L, L)
        H = A.transpose(1, 2) @ U                           # (B, L, d): column j = Σ_i U_i A[i, j]
        logits_all = (H @ self.W_V.T) @ self.W_E            # (B, L, V)
        return logits_all[:, -1]

    def frozen_names(self) -> list[str]:
        return [n for n, p in self.named_parameters() if not p.requires_grad]
