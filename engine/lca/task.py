"""The LCA data distribution D^L (Sec. 4.1) and its Bayes-optimal classifier.

p(z | z*) = ω·π(z | z*) + (1 - ω)·Unif(Z),   π(z | z*) ∝ exp(-D_H(z, z*)/β) on N(z*), 0 outside.
A sample: z* ~ Unif(Z); t_1..t_{L-1} ~ p(·|z*); t_L ~ π(·|z*); x = (t_1..t_L), y = ι(z*).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.lca.config import TaskConfig
from engine.lca.latent import LatentSpace

__all__ = ["LCATask", "TaskConfig"]


class LCATask:
    """Exact conditional tables and a vectorised, seeded sampler for one TaskConfig.

    ``pi[z*, z]`` = π(z | z*) and ``p[z*, z]`` = p(z | z*) are public float64 numpy arrays so that
    tests (and the Bayes classifier) can use the exact probabilities.
    """

    def __init__(self, cfg: TaskConfig, device: str | torch.device = "cpu", sampler: str = "auto"):
        """``sampler``: ``auto`` (one shared table of offsets z ⊕ z* where the tables allow it) or
        ``rows`` (one inverse-CDF row per z*, the previous sampler; same distribution)."""
        if sampler not in ("auto", "rows"):
            raise ValueError(f"unknown sampler {sampler!r}: choose auto or rows")
        self.cfg = cfg
        self.space = LatentSpace(cfg.m)
        self.device = torch.device(device)
        D = self.space.hamming().astype(np.float64)
        mask = self.space.neighborhood_mask(cfg.neighborhood)
        w = np.where(mask, np.exp(-D / cfg.beta), 0.0)
        self.pi = w / w.sum(axis=1, keepdims=True)
        V = self.space.V
        self.p = cfg.omega * self.pi + (1.0 - cfg.omega) / V
        # Every neighbourhood (all, hamming1, cluster:k) depends on z XOR z* only, so p(z|z*) =
        # ψ(z ⊕ z*) and π(z|z*) = φ(z ⊕ z*): one length-V alias table serves every z*.
        xor = np.bitwise_xor.outer(np.arange(V, dtype=np.int32), np.arange(V, dtype=np.int32))
        self.xor_invariant = bool(sampler == "auto" and np.allclose(self.p[0][xor], self.p, rtol=1e-12, atol=0)
                                  and np.allclose(self.pi[0][xor], self.pi, rtol=1e-12, atol=0))
        del xor
        if self.xor_invariant:
            self._alias_p, self._alias_pi = self._alias_table(self.p[0]), self._alias_table(self.pi[0])
        else:
            self._cdf_p, self._cdf_pi = self._cdf_table(self.p), self._cdf_table(self.pi)
        with np.errstate(divide="ignore"):
            self._log_p = torch.tensor(np.log(self.p), dtype=torch.float64, device=self.device)
            self._log_pi = torch.tensor(np.log(self.pi), dtype=torch.float64, device=self.device)
        self._log_p_finite = torch.nan_to_num(self._log_p, neginf=-1e300)

    def _cdf_table(self, probs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Cumulative rows (float64 keeps the tail exact enough) and, per row, the last token of
        positive probability (where a u rounding above the last cumulative value is folded)."""
        cdf = torch.tensor(np.cumsum(probs, axis=1), dtype=torch.float64, device=self.device)
        last = torch.tensor((probs > 0).cumsum(axis=1).argmax(axis=1), device=self.device)
        return cdf, last

    def _alias_table(self, probs: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Walker's alias table (Vose's construction) of one distribution over V outcomes: bucket
        k = ⌊uV⌋ keeps k when the fraction uV - k < accept[k], else gives alias[k]. O(1) a draw;
        a zero-probability outcome is never given (accept 0, alias of positive probability)."""
        V = probs.shape[0]
        q = probs * (V / probs.sum())
        accept, alias = np.zeros(V), np.zeros(V, dtype=np.int64)
        small = [k for k in range(V) if q[k] < 1.0]
        large = [k for k in range(V) if q[k] >= 1.0]
        while small and large:
            s_, l_ = small.pop(), large.pop()
            accept[s_], alias[s_] = q[s_], l_
            q[l_] -= 1.0 - q[s_]
            (small if q[l_] < 1.0 else large).append(l_)
        best = int(np.argmax(probs))
        for k in small + large:  # left over by rounding: probability ≈ 1 bucket, or none at all
            accept[k], alias[k] = (1.0, k) if probs[k] > 0 else (0.0, best)
        return (torch.tensor(accept, dtype=torch.float64, device=self.device),
                torch.tensor(alias, device=self.device))

    def _alias_draw(self, table, u: torch.Tensor) -> torch.Tensor:
        accept, alias = table
        v = u * accept.shape[0]
        k = v.long()
        return torch.where(v - k < accept[k], k, alias[k])

    @property
    def V(self) -> int:  # noqa: N802
        return self.space.V

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw (x, y): x (B, L) int64 tokens, y (B,) int64 answers, on ``self.device``.

        Vectorised over the whole batch, one uniform a token: with XOR-invariant tables (every
        neighbourhood here) the offsets δ = x ⊕ y come from one alias table (O(1) a token);
        otherwise by inverse CDF (``searchsorted``) on the row of each y. The same generator state
        gives the same batch.
        """
        B, L, V = batch_size, self.cfg.L, self.V
        y = torch.randint(0, V, (B,), generator=generator, device=self.device)
        u = torch.rand((B, L), generator=generator, device=self.device, dtype=torch.float64)
        x = torch.empty((B, L), dtype=torch.int64, device=self.device)
        tables = (self._alias_p, self._alias_pi) if self.xor_invariant else (self._cdf_p, self._cdf_pi)
        if L > 1:
            x[:, :-1] = self._inverse_cdf(tables[0], y, u[:, :-1])
        x[:, -1:] = self._inverse_cdf(tables[1], y, u[:, -1:])
        return x, y

    def sample_mixed(self, y1: torch.Tensor, y2: torch.Tensor, r: float,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Contexts for y1 with a fraction r of their tokens drawn for y2 (Sec. 5.5, Fig. C.5):
        (x (n, L) int64, mixed (n, L) bool, True where t_l was drawn for y2).

        Of the L-1 context tokens, k = round(r·(L-1)) come from p(·|y2) and L-1-k from p(·|y1), at
        positions drawn uniformly per sample; the last token always comes from π(·|y1). Position
        l's token for either source is read from the same uniform u_l, so r = 0 with the same
        generator state gives the same context with every y2 token replaced by its y1 twin, and
        a larger r only adds y2 positions (the rank order is drawn before k is applied). Inverse
        CDF on the generator's device; the same generator state gives the same batch.
        """
        from engine.errors import ConfigError

        if not (isinstance(r, (int, float)) and not isinstance(r, bool) and 0.0 <= float(r) <= 1.0):
            raise ConfigError(f"the mixing ratio r must lie in [0, 1], got {r!r}")
        dev = generator.device
        n, L, V = int(y1.shape[0]), self.cfg.L, self.V
        cdf_p = torch.tensor(np.cumsum(self.p, axis=1), dtype=torch.float64, device=dev)
        cdf_pi = torch.tensor(np.cumsum(self.pi, axis=1), dtype=torch.float64, device=dev)
        u = torch.rand((n, L), generator=generator, device=dev, dtype=torch.float64)
        x = torch.empty((n, L), dtype=torch.int64, device=dev)
        mixed = torch.zeros((n, L), dtype=torch.bool, device=dev)
        if L > 1:
            k = int(round(float(r) * (L - 1)))
            ctx = u[:, :-1].contiguous()
            from1 = torch.searchsorted(cdf_p[y1], ctx, right=True)
            from2 = torch.searchsorted(cdf_p[y2], ctx, right=True)
            keys = torch.rand((n, L - 1), generator=generator, device=dev)
            rank = keys.argsort(dim=1).argsort(dim=1)          # a uniform random permutation per row
            mixed[:, :-1] = rank < k
            x[:, :-1] = torch.where(mixed[:, :-1], from2, from1)
        x[:, -1:] = torch.searchsorted(cdf_pi[y1], u[:, -1:].contiguous(), right=True)
        x.clamp_(max=V - 1)
        return x, mixed

    def _inverse_cdf(self, table, y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        if self.xor_invariant:
            return self._alias_draw(table, u).bitwise_xor_(y[:, None])
        cdf, last = table
        return torch.minimum(torch.searchsorted(cdf[y], u.contiguous(), right=True), last[y, None])

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """(B, V) log p(x | y) for every candidate y: Σ_{l<L} log p(t_l|y) + log π(t_L|y)."""
        x = x.to(self.device)
        B, L = x.shape
        V = self.V
        counts = torch.zeros((B, V), dtype=torch.float64, device=self.device)
        if L > 1:
            counts.scatter_add_(1, x[:, :-1], torch.ones((B, L - 1), dtype=torch.float64, device=self.device))
        # counts @ log_p.T sums log p(t|y) over context tokens. With ω = 1, p has zeros; a huge
        # finite negative stands in for log 0 so that 0 * log 0 stays 0 (not NaN).
        ctx = counts @ self._log_p_finite.T
        last = self._log_pi.T[x[:, -1]]  # (B, V): log π(t_L | y)
        return ctx + last

    def bayes_predict(self, x: torch.Tensor) -> torch.Tensor:
        """argmax_y p(y | x) = argmax_y log p(x | y) (y is uniform): the best any model can do."""
        return self.log_likelihood(x).argmax(dim=1)

    def bayes_accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return (self.bayes_predict(x) == y.to(self.device)).double().mean().item()
