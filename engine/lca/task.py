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

    def __init__(self, cfg: TaskConfig, device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.space = LatentSpace(cfg.m)
        self.device = torch.device(device)
        D = self.space.hamming().astype(np.float64)
        mask = self.space.neighborhood_mask(cfg.neighborhood)
        w = np.where(mask, np.exp(-D / cfg.beta), 0.0)
        self.pi = w / w.sum(axis=1, keepdims=True)
        V = self.space.V
        self.p = cfg.omega * self.pi + (1.0 - cfg.omega) / V
        # Cumulative tables for inverse-CDF sampling (float64 keeps the tail exact enough).
        self._cdf_p = torch.tensor(np.cumsum(self.p, axis=1), dtype=torch.float64, device=self.device)
        self._cdf_pi = torch.tensor(np.cumsum(self.pi, axis=1), dtype=torch.float64, device=self.device)
        with np.errstate(divide="ignore"):
            self._log_p = torch.tensor(np.log(self.p), dtype=torch.float64, device=self.device)
            self._log_pi = torch.tensor(np.log(self.pi), dtype=torch.float64, device=self.device)
        self._log_p_finite = torch.nan_to_num(self._log_p, neginf=-1e300)

    @property
    def V(self) -> int:  # noqa: N802
        return self.space.V

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw (x, y): x (B, L) int64 tokens, y (B,) int64 answers, on ``self.device``.

        Inverse-CDF sampling with one ``searchsorted`` over the whole batch: no Python loop
        over samples or positions. The same generator state gives the same batch.
        """
        B, L, V = batch_size, self.cfg.L, self.V
        y = torch.randint(0, V, (B,), generator=generator, device=self.device)
        u = torch.rand((B, L), generator=generator, device=self.device, dtype=torch.float64)
        x = torch.empty((B, L), dtype=torch.int64, device=self.device)
        if L > 1:
            x[:, :-1] = torch.searchsorted(self._cdf_p[y], u[:, :-1].contiguous(), right=True)
        x[:, -1:] = torch.searchsorted(self._cdf_pi[y], u[:, -1:].contiguous(), right=True)
        # Rounding can put u above the last cumulative value; fold it onto the last supported token.
        x.clamp_(max=V - 1)
        return x, y

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
