"""The latent space of m binary concepts (Sec. 4.1).

Token id = the bit vector z = (z_1, ..., z_m) read as a binary number, z_1 the most significant
bit, so V = 2^m and ι(z) = Σ_i z_i 2^(m-i). Neighbourhoods N(z) ⊂ Z \\ {z}:

- ``all``       every other token (Theorem 1);
- ``hamming1``  tokens at Hamming distance 1 (Lemma 2);
- ``cluster:k`` tokens sharing the first k bits with z, z itself excluded (Sec. 5.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.errors import ConfigError

#: Largest m the dense V x V tables are built for (V = 4096 -> 16M entries per table).
MAX_M = 12


def parse_neighborhood(spec: str, m: int) -> tuple[str, int]:
    """Parse ``all`` / ``hamming1`` / ``cluster:k`` into (kind, k); raise ConfigError if empty."""
    s = (spec or "").strip().lower()
    if s in ("all", "hamming1"):
        return s, 0
    if s.startswith("cluster:"):
        try:
            k = int(s.split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"bad neighbourhood {spec!r}: cluster:k needs an integer k",
                              field="neighborhood") from None
        if not 1 <= k < m:
            raise ConfigError(
                f"neighbourhood {spec!r} is empty for m = {m}: cluster:k needs 1 <= k < m "
                "(with k >= m every token is alone in its cluster)", field="neighborhood")
        return "cluster", k
    raise ConfigError(f"unknown neighbourhood {spec!r}: choose all, hamming1 or cluster:k", field="neighborhood")


@dataclass(frozen=True)
class LatentSpace:
    """The m-bit latent space with its token <-> bit-vector map and Hamming geometry."""

    m: int

    def __post_init__(self):
        if not isinstance(self.m, int) or self.m < 1:
            raise ConfigError(f"m must be an integer >= 1, got {self.m!r}", field="m")
        if self.m > MAX_M:
            raise ConfigError(
                f"m = {self.m} gives V = 2^{self.m} = {2 ** self.m} tokens; the dense V x V tables "
                f"would not fit in memory (at most m = {MAX_M})", field="m")

    @property
    def V(self) -> int:  # noqa: N802 (paper notation)
        return 2 ** self.m

    def bits(self) -> np.ndarray:
        """(V, m) array of 0/1: row t is ι^{-1}(t), first column the most significant bit."""
        t = np.arange(self.V)[:, None]
        shifts = np.arange(self.m - 1, -1, -1)[None, :]
        return ((t >> shifts) & 1).astype(np.int8)

    def token(self, bits) -> int:
        """ι(z): the token id of a bit vector (first entry most significant)."""
        out = 0
        for b in bits:
            out = (out << 1) | int(b)
        return out

    def hamming(self) -> np.ndarray:
        """(V, V) Hamming distance matrix D_H(t, t')."""
        t = np.arange(self.V)
        x = t[:, None] ^ t[None, :]
        return np.array([bin(v).count("1") for v in range(self.V)], dtype=np.int64)[x]

    def neighborhood_mask(self, spec: str) -> np.ndarray:
        """(V, V) boolean: mask[z*, z] is True iff z ∈ N(z*). The diagonal is always False."""
        kind, k = parse_neighborhood(spec, self.m)
        D = self.hamming()
        if kind == "all":
            mask = D > 0
        elif kind == "hamming1":
            mask = D == 1
        else:
            t = np.arange(self.V)
            top = t >> (self.m - k)
            mask = (top[:, None] == top[None, :]) & (D > 0)
        return mask

    def hamming1_adjacency(self) -> np.ndarray:
        """(V, V) 0/1 matrix A with A[t, t'] = 1 iff D_H(t, t') = 1 (the N_1 of eq. 5.1)."""
        return (self.hamming() == 1).astype(np.float64)
