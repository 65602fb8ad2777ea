"""Everything the inspector shows about one eq. 4.1 model, computed in one call.

``load_model_from_run`` rebuilds a run's model on the CPU from ``checkpoint.safetensors``;
``snapshot_model`` copies a live (training) model so inspection never races the training thread;
``inspect_model`` runs the analyses of ``engine.lca.analysis`` on fresh seeded samples of the run's
task and returns an ``InspectionReport``: plain numpy arrays and floats, no torch tensors, so the
UI can draw it on its own thread.

Cost (m = 6, L = 64, d = 64 on one CPU core): well under a second. The V x V average attention
matrix (every query position, Fig. 3c) is built from the first ``attention_samples`` samples only.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.errors import ConfigError, UserError
from engine.lca.analysis import (
    EmbeddingGeometry,
    GroupedAttention,
    attention_by_cluster,
    attention_by_hamming,
    average_attention_matrix,
    embedding_geometry,
    gram_matrix,
    singular_values,
    spectral_gap,
    value_angles_report,
    value_swap_report,
)
from engine.lca.config import RunConfig, TaskConfig
from engine.lca.latent import parse_neighborhood
from engine.lca.model import OneLayerTransformer
from engine.lca.rundir import CHECKPOINT, CONFIG, RunDir
from engine.lca.task import LCATask

__all__ = ["InspectionReport", "inspect_model", "load_model_from_run", "snapshot_model"]

#: Samples used for the V x V average attention matrix (B·L·L weights): enough to see every pair
#: for m <= 6, L = 64, and cheap.
ATTENTION_SAMPLES = 256


@dataclass(frozen=True, eq=False)
class InspectionReport:
    """The inspector's numbers for one model (tokens in bit order everywhere).

    - ``geometry``: inner products vs Hamming distance and the eq. 5.2 fit (Fig. 3b);
      ``pair_min`` / ``pair_max``: the smallest / largest inner product at each distance k = 0..m
      (k = 0: the squared norms), the spread of the all-pairs scatter;
    - ``gram``: (V, V) W_Eᵀ W_E;
    - ``sv_W_E`` / ``sv_W_V``: singular values, descending; ``gap_W_E`` / ``gap_W_V``:
      σ_m / σ_{m+1} (NaN when there are not more than m values);
    - ``swap``: accuracy with the trained W_V, the constructed (eq. 5.1) and random-constructed
      ones, and the Bayes-optimal accuracy, on the same ``n_samples`` fresh samples (Fig. C.2);
    - ``angles``: smallest principal angle (degrees, rank m) of the trained W_V to the constructed,
      random-constructed and Gaussian matrices, NaN when d < m (Fig. C.3);
    - ``attention_hamming``: last-position attention by D_H(t_l, t_L), distances 0..m;
      ``attention_cluster``: {k: same/other-cluster attention for clusters of the first k bits};
    - ``attention_matrix``: (V, V) mean attention of query token t on key token t' (NaN = unseen).
    """

    m: int
    L: int
    d: int
    neighborhood: str
    n_samples: int
    seed: int
    geometry: EmbeddingGeometry
    pair_min: np.ndarray
    pair_max: np.ndarray
    gram: np.ndarray
    sv_W_E: np.ndarray
    sv_W_V: np.ndarray
    gap_W_E: float
    gap_W_V: float
    swap: dict
    angles: dict
    attention_hamming: GroupedAttention
    attention_cluster: dict
    attention_matrix: np.ndarray
    attention_samples: int
    seconds: float = field(default=0.0, compare=False)

    @property
    def V(self) -> int:  # noqa: N802
        return 2 ** self.m

    def to_dict(self) -> dict:
        """JSON-ready summary (matrices as nested lists; NaN stays NaN)."""
        return {"m": self.m, "L": self.L, "d": self.d, "neighborhood": self.neighborhood,
                "n_samples": self.n_samples, "seed": self.seed,
                "geometry": self.geometry.to_dict(), "pair_min": self.pair_min.tolist(),
                "pair_max": self.pair_max.tolist(), "gram": self.gram.tolist(),
                "sv_W_E": self.sv_W_E.tolist(), "sv_W_V": self.sv_W_V.tolist(),
                "gap_W_E": self.gap_W_E, "gap_W_V": self.gap_W_V,
                "swap": dict(self.swap), "angles": dict(self.angles),
                "attention_hamming": self.attention_hamming.to_dict(),
                "attention_cluster": {str(k): g.to_dict() for k, g in self.attention_cluster.items()},
                "attention_matrix": self.attention_matrix.tolist(),
                "attention_samples": self.attention_samples}


# ----------------------------------------------------------------------------- loading
def load_model_from_run(run_dir: str | os.PathLike) -> tuple[RunConfig, OneLayerTransformer, int]:
    """(config, model on the CPU with the checkpoint's weights, checkpoint step) of a run directory.

    Raises UserError naming the file when config.json or checkpoint.safetensors is missing or
    damaged, or when the checkpoint's weights do not fit the config."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise UserError(f"{path} is not a directory")
    if not (path / CONFIG).exists():
        raise UserError(f"{path} is not a run directory (no {CONFIG})")
    rd = RunDir(path)
    cfg = rd.config()
    ckpt = path / CHECKPOINT
    if not ckpt.exists():
        raise UserError(f"{ckpt} does not exist: the run has not saved weights yet")
    tensors, step = rd.load_checkpoint()
    return cfg, model_from_tensors(cfg, tensors, f"checkpoint {ckpt}", path / CONFIG), step


def model_from_tensors(cfg: RunConfig, tensors: dict, source: str = "the snapshot",
                       config: object = "the config") -> OneLayerTransformer:
    """An eval-mode model on the CPU, no gradients, with the weights ``tensors`` holds as
    ``model.<parameter>`` (a checkpoint's or a trainer snapshot's; other entries are ignored).

    Raises UserError naming ``source`` (and ``config``) when a weight is missing or has another
    shape than ``cfg`` gives."""
    model = OneLayerTransformer(cfg.task.V, cfg.model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            t = tensors.get(f"model.{name}")
            if t is None:
                raise UserError(f"{source} is damaged: it has no model.{name}")
            if tuple(t.shape) != tuple(p.shape):
                raise UserError(f"{source} does not match {config}: model.{name} has shape "
                                f"{tuple(t.shape)}, the config gives {tuple(p.shape)}")
            p.copy_(t.to(p.dtype))
    model.requires_grad_(False)
    return model.eval()


def load_live_model(trainer, timeout: float | None = None) -> tuple[RunConfig, OneLayerTransformer, int]:
    """(config, model on the CPU, step) of a training run, consistent: ``Trainer.request_snapshot``
    is answered by the training thread between two steps (never mid AdamW update). Call it from a
    thread other than the training thread; ``timeout`` seconds at most."""
    snap = trainer.request_snapshot().result(timeout=timeout)
    tensors = {f"model.{k.removeprefix('model.')}": v for k, v in snap["tensors"].items()
               if not k.startswith(("optim.", "rng."))}
    model = model_from_tensors(trainer.cfg, tensors, f"the live snapshot of step {snap['step']}")
    return trainer.cfg, model, snap["step"]


@torch.no_grad()
def snapshot_model(model: OneLayerTransformer) -> OneLayerTransformer:
    """A CPU copy of ``model``'s weights (no gradients, no optimiser state) to inspect while the
    original keeps training. Take it between steps (e.g. in the training thread's callback)."""
    copy = OneLayerTransformer(model.V, model.cfg)
    copy.load_state_dict({k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
    copy.requires_grad_(False)
    return copy.eval()


# ----------------------------------------------------------------------------- inspection
class _Memo:
    """The model seen through a cache: ``hidden`` / ``attention_last`` of the same input tensor
    (same storage, shape and strides) are computed once. The analyses score the trained,
    constructed and random-constructed W_V and three groupings of attention on the same samples;
    without the cache each recomputes the same forward pass. Everything else is the model's."""

    def __init__(self, model: OneLayerTransformer):
        self._model = model
        self._hidden: dict = {}

    def __getattr__(self, name):
        return getattr(self._model, name)

    @staticmethod
    def _key(x: torch.Tensor) -> tuple:
        return x.device, x.data_ptr(), tuple(x.shape), x.stride(), x._version

    def hidden(self, x: torch.Tensor):
        key = self._key(x)
        if key not in self._hidden:
            self._hidden[key] = self._model.hidden(x)
        return self._hidden[key]

    def attention_last(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)[1]

    def parameters(self, recurse: bool = True):
        return self._model.parameters(recurse)


def _pair_range(geometry: EmbeddingGeometry, gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per Hamming distance k = 0..m: min and max inner product (k = 0 over the diagonal)."""
    m = geometry.m
    lo, hi = np.full(m + 1, np.nan), np.full(m + 1, np.nan)
    diag = np.diag(gram)
    lo[0], hi[0] = diag.min(), diag.max()
    for k in range(1, m + 1):
        sel = geometry.inner[geometry.dist == k]
        if sel.size:
            lo[k], hi[k] = sel.min(), sel.max()
    return lo, hi


def _cluster_ks(m: int, neighborhood: str) -> list[int]:
    ks = {1}
    if m > 2:
        ks.add(2)
    kind, k = parse_neighborhood(neighborhood, m)
    if kind == "cluster":
        ks.add(k)
    return sorted(k for k in ks if k <= m)


@torch.no_grad()
def inspect_model(cfg: RunConfig | TaskConfig, model: OneLayerTransformer, n_samples: int = 2048,
                  seed: int = 0, attention_samples: int = ATTENTION_SAMPLES) -> InspectionReport:
    """Every inspector number for ``model`` on ``n_samples`` fresh samples of ``cfg``'s task.

    The samples come from a CPU generator seeded with ``seed``; the random-constructed W_V of the
    swap uses ``seed + 1`` and the random matrices of the angles ``seed + 2``, so the same model
    and seed give the same report. A model that is not on the CPU is copied there first; the model
    is never modified."""
    t0 = time.perf_counter()
    task_cfg = cfg.task if isinstance(cfg, RunConfig) else cfg
    if not isinstance(task_cfg, TaskConfig):
        raise ConfigError(f"inspect_model needs a RunConfig or TaskConfig, got {type(cfg).__name__}")
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ConfigError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    m, V = task_cfg.m, task_cfg.V
    if model.V != V:
        raise ConfigError(f"the model has V = {model.V} tokens but the task has m = {m} (V = {V})")
    if next(model.parameters()).device.type != "cpu":
        model = snapshot_model(model)
    W_E = model.W_E.detach()
    W_V = model.W_V.detach()
    d = W_E.shape[0]

    geometry = embedding_geometry(W_E, m)
    gram = gram_matrix(W_E)
    pair_min, pair_max = _pair_range(geometry, gram)
    sv_E, sv_V = singular_values(W_E), singular_values(W_V)

    task = LCATask(task_cfg, "cpu")
    x, y = task.sample(n_samples, torch.Generator().manual_seed(seed))
    memo = _Memo(model)
    swap = value_swap_report(memo, m, x, y, generator=torch.Generator().manual_seed(seed + 1),
                             neighborhood=task_cfg.neighborhood)
    swap["bayes"] = task.bayes_accuracy(x, y)
    if d >= m:
        angles = value_angles_report(W_V, W_E, m, generator=torch.Generator().manual_seed(seed + 2),
                                     neighborhood=task_cfg.neighborhood)
    else:  # rank-m subspaces of a d x d matrix do not exist
        angles = {"constructed": math.nan, "random_constructed": math.nan, "gaussian": math.nan, "k": m}

    by_hamming = attention_by_hamming(memo, x)
    by_cluster = {k: attention_by_cluster(memo, x, k) for k in _cluster_ks(m, task_cfg.neighborhood)}
    n_att = min(int(attention_samples), n_samples)
    att_matrix = average_attention_matrix(model, x[:n_att])

    return InspectionReport(
        m=m, L=task_cfg.L, d=int(d), neighborhood=task_cfg.neighborhood, n_samples=n_samples, seed=seed,
        geometry=geometry, pair_min=pair_min, pair_max=pair_max, gram=gram, sv_W_E=sv_E, sv_W_V=sv_V,
        gap_W_E=spectral_gap(sv_E, m), gap_W_V=spectral_gap(sv_V, m),
        swap={k: float(v) for k, v in swap.items()},
        angles={k: (int(v) if k == "k" else float(v)) for k, v in angles.items()},
        attention_hamming=by_hamming, attention_cluster=by_cluster, attention_matrix=att_matrix,
        attention_samples=n_att, seconds=time.perf_counter() - t0)
