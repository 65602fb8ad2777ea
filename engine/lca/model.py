"""The one-layer transformer of eq. 4.1, in one sitting.

    f(x) = [W_Eᵀ W_V attn(W_E χ(x))]_{:,L},   attn(U) = U · σ((W_K U)ᵀ (W_Q U) / √d_a)

σ is the column-wise softmax, so column L of attn(U) is Σ_l u_l · softmax_l(s_l) with
s_l = ⟨W_K u_l, W_Q u_L⟩/√d_a = ⟨u_l, r⟩, r = W_Kᵀ W_Q u_L/√d_a, u_l = W_E(x_l): only the last query
is needed, and a position's score depends on its token id alone. ``forward`` uses that exactly:

- ``token`` formulation (V small against L): one score per vocabulary token s = W_Eᵀ r (B·V·d),
  the attention mass per token c = softmax_t(s_t + log n_t) (n_t = count of t in the context) and
  h = W_E c. The model sees the context only through its token counts and the last token.
- ``position`` formulation (L small against V): s_l = ⟨u_l, r⟩ per position (B·L·d), h = Σ_l σ_l u_l.

Neither projects the context through W_K. ``forward_reference`` (every key through W_K, then the
last query) and ``forward_full`` (every query, then the last column) are kept for tests and bench/.
Tied embeddings, no residual, no normalisation, no causal mask (the attention sees the whole context).

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

#: ``forward`` scores per vocabulary token when V <= TOKEN_LEVEL_RATIO · L, else per position
#: (measured: the per-position gather and its backward cost about as much as 64 token scores).
TOKEN_LEVEL_RATIO = 64
_LOG_ZERO = -1e4


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
        self._log_counts: torch.Tensor | None = None  # log n for n = 0..L (a cache, not state)
        with torch.no_grad():
            if cfg.uniform_attention:
                self.W_K.zero_()
                self.W_Q.zero_()
            if cfg.freeze_value:
                self.W_V.copy_(torch.eye(d))

    # ----------------------------------------------------------------- the fast, exact forward
    def _query_direction(self, x: torch.Tensor) -> torch.Tensor:
        """r = W_Kᵀ W_Q u_L / √d_a (B, d): the score of any context column u is ⟨u, r⟩."""
        u_last = F.embedding(x[:, -1], self.W_E.T)                      # (B, d)
        return (u_last @ self.W_Q.T) @ self.W_K / math.sqrt(self.cfg.d_a)

    def formulation(self, L: int) -> str:
        """``token`` (scores per vocabulary token, B·V·d dense products) or ``position`` (per
        context position, B·L·d gathered), whichever is faster for this L; both are exact."""
        return "token" if self.V <= TOKEN_LEVEL_RATIO * L else "position"

    def use_vocab_products(self, B: int) -> bool:
        """Whether a batch of B is cheaper through the V×V products S = W_Eᵀ W_Qᵀ W_K W_E/√d_a
        (scores: a row gather) and M = W_Eᵀ W_V W_E (logits = M c) than per sample
        (r = W_Kᵀ W_Q u_L, s = W_Eᵀ r; h = W_E c, W_Eᵀ W_V h): large batches against V."""
        V, d, d_a = self.V, self.cfg.d, self.cfg.d_a
        per_sample = B * (2 * d * d_a + d * V) + B * (2 * V * d + d * d)
        products = V * d_a * (2 * d + V) + V * d * (d + V) + B * V * V
        return products < per_sample

    def token_mass(self, x: torch.Tensor, products: bool = False) -> torch.Tensor:
        """(B, V) attention mass per token id: c_t = Σ_{l: x_l = t} σ_l (eq. 4.1, last column).

        Positions holding the same token get the same score s_t = ⟨W_E(t), r⟩, so
        c = softmax_t(s_t + log n_t) with n_t the count of t in the context (log 0 → -1e4, whose
        exp underflows to exactly 0 unless two scores differ by more than 10⁴)."""
        B, L = x.shape
        n = torch.zeros((B, self.V), dtype=torch.int64, device=x.device)
        n.scatter_add_(1, x, torch.ones_like(x))                        # token counts (exact integers)
        if self.cfg.uniform_attention:                                  # W_K = W_Q = 0: every σ_l = 1/L
            return n.to(self.W_E.dtype) / L
        log_n = self._log_count_table(L, x.device).take(n)              # log n_t, log 0 -> -1e4
        if products:                                                    # S[t_L] = W_E(t_L)ᵀ W_Qᵀ W_K W_E
            S = (self.W_E.T @ self.W_Q.T) @ (self.W_K @ self.W_E) / math.sqrt(self.cfg.d_a)
            s = S.index_select(0, x[:, -1])
        else:
            s = self._query_direction(x) @ self.W_E                     # (B, V): one score per token
        return (s + log_n).softmax(dim=1)

    def _log_count_table(self, L: int, device) -> torch.Tensor:
        table = self._log_counts
        if table is None or table.shape[0] < L + 1 or table.device != torch.device(device) \
                or table.dtype != self.W_E.dtype:
            table = torch.arange(L + 1, dtype=torch.float64).log()
            table[0] = _LOG_ZERO
            self._log_counts = table = table.to(device=device, dtype=self.W_E.dtype)
        return table

    def _hidden_token(self, x: torch.Tensor) -> torch.Tensor:
        return self.token_mass(x) @ self.W_E.T                          # h = W_E c

    def _hidden_position(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        U = F.embedding(x, self.W_E.T)                                  # (B, L, d): columns W_E χ(x)
        B, L, _ = U.shape
        if self.cfg.uniform_attention:
            a = torch.full((B, L), 1.0 / L, dtype=U.dtype, device=U.device)
        else:
            a = (U @ self._query_direction(x)[:, :, None]).squeeze(2).softmax(dim=1)   # (B, L)
        return (a[:, None, :] @ U).squeeze(1), a

    def attention_last(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) attention weights of the last position over the context: column L of σ(·)."""
        return self._hidden_position(x)[1]

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h(x) = [attn(W_E χ(x))]_{:,L} (B, d) and the per-position attention weights (B, L)."""
        return self._hidden_position(x)

    def forward(self, x: torch.Tensor, return_attention: bool = False, formulation: str | None = None,
                products: bool | None = None):
        """Logits f(x) (B, V) at the last position; with ``return_attention`` also (B, L) weights.

        Exact eq. 4.1 in the cheaper of two reassociations (``formulation``: ``token``,
        ``position`` or None = the cheaper for this L); neither projects the context through W_K.
        ``products`` (token formulation; None = by cost, ``use_vocab_products``) goes through the
        V×V matrices S and M instead of per-sample vectors."""
        formulation = formulation or self.formulation(x.shape[1])
        if formulation not in ("token", "position"):
            raise ValueError(f"unknown formulation {formulation!r}")
        if return_attention or formulation == "position":
            h, a = self._hidden_position(x)
        else:
            if products is None:
                products = self.use_vocab_products(x.shape[0])
            if products:
                M = self.W_E.T @ (self.W_V @ self.W_E)                   # (V, V) = W_Eᵀ W_V W_E
                return self.token_mass(x, products=True) @ M.T
            h, a = self._hidden_token(x), None
        logits = (h @ self.W_V.T) @ self.W_E                           # W_Eᵀ W_V h, batched as rows
        return (logits, a) if return_attention else logits

    # ----------------------------------------------------------------- references (tests, bench/)
    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The last-query formulation: every key W_K u_l (B·L·d·d_a), dotted with the last query."""
        U = F.embedding(x, self.W_E.T)
        k = U @ self.W_K.T                                              # (B, L, d_a)
        q = U[:, -1] @ self.W_Q.T                                       # (B, d_a)
        a = (torch.einsum("bld,bd->bl", k, q) / math.sqrt(self.cfg.d_a)).softmax(dim=1)
        return (torch.einsum("bl,bld->bd", a, U) @ self.W_V.T) @ self.W_E

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
