"""The bench's side of the fast trace (``engine.hijack.trace``): ``last_position`` (restore_last and
the knockouts only, the bench's fast side against the plain loop) and ``device_check`` (the
Figure 1 check of a CUDA / half-precision model against the CPU float32 one, ``bench/device_check.py``;
``lca-tui doctor`` tries ``CHECK_TARGETS`` in the same order)."""

from __future__ import annotations

from engine.errors import UserError
from engine.hijack.blocks import check_attention, locate
from engine.hijack.edits import Edit, capture
from engine.hijack.knockouts import DEFAULT_WINDOW
from engine.hijack.kv import extend
from engine.hijack.measures import RESTORE_LAST, Label
from engine.hijack.trace import Pair, _hijacked, _knock_rows, _run_rows, prepare


def last_position(lm, pair: Pair, variants=("all",), window: int | None = None, chunk: int = 64,
                  knock_sink: bool = False) -> dict:
    """Only ``restore_last`` and the knockouts ``variants`` at every block: one batched single-token
    forward after the hijacked run (the bench's fast side; ``trace`` computes these and more)."""
    import torch

    check_attention(lm)
    layout = locate(lm)
    n = layout.n_layers
    window = min(DEFAULT_WINDOW, n) if window is None else window
    with torch.inference_mode():
        store: dict = {}
        with capture(layout, store, cols=None):
            extend(lm, None, [list(pair.clean_ids)], keep=1, want_cache=False)
        _, kv = _hijacked(lm, layout, pair)
        c = pair.positions[-1][1]
        rows = [(RESTORE_LAST.label_at(layer, 0), [Edit("resid", layer, 0, 0, store[("resid", layer)][0, c])])
                for layer in range(n)]
        rows += _knock_rows(pair, n, window, knock_sink, variants)
        got = _run_rows(lm, layout, kv, pair.ids, len(pair.ids) - 1, rows, pair, chunk, None)
    out = {RESTORE_LAST.name: [got[RESTORE_LAST.label_at(layer, 0)] for layer in range(n)]}
    for v in variants:
        out[v] = [got[Label("knockout", v, layer)] for layer in range(n)]
    return out


#: Target pairs ``device_check`` tries in turn (the first whose first tokens differ in the tokenizer).
CHECK_TARGETS = ((" Paris", " Chicago"), (" Paris", " London"), (" Rome", " London"))


def device_check(ref_lm, lm, prompt: str = "The Eiffel Tower is in",
                 prepend: str = "The Eiffel Tower is not in Chicago. " * 4,
                 targets: tuple[str, str] | None = None) -> tuple[float, float]:
    """The last-position trace of a Figure 1 style prompt on ``lm`` (e.g. CUDA, bf16) against
    ``ref_lm`` (CPU fp32): (largest difference of ``logit_diff`` over every restore_last and knockout,
    the bf16/fp16-against-float32 tolerance at the reference's largest |logit_diff|,
    ``engine.hijack.tolerance.cross_dtype_tolerance``).
    ``targets``: the first of ``CHECK_TARGETS`` the tokenizer can tell apart. Used by
    ``bench/device_check.py``."""
    import torch

    from engine.hijack.tolerance import cross_dtype_tolerance

    for pair_targets in [targets] if targets else CHECK_TARGETS:
        try:
            prepare(ref_lm, prompt, prepend, *pair_targets)
        except UserError:
            if targets:
                raise
            continue
        break
    got = [last_position(m, prepare(m, prompt, prepend, *pair_targets), variants=("all", "mentions"))
           for m in (ref_lm, lm)]
    diff = max(abs(a.logit_diff - b.logit_diff) for key in got[0] for a, b in zip(got[0][key], got[1][key]))
    scale = max(abs(m.logit_diff) for key in got[0] for m in got[0][key])
    return float(diff), cross_dtype_tolerance(getattr(lm, "dtype", torch.float32), scale)
