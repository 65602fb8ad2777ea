"""``lca-tui doctor``: what a user checks first on a new box, as a list of rows (no UI).

Each ``Check`` is a name, a value, a status (``ok``, ``fail`` or ``info``) and a detail line. The rows:
the versions (Python, torch, transformers, CUDA and cuDNN when present), the device and the dtype the
model actually runs in, its family (class) and the parts the trace hooks (``blocks.locate``), the
attention implementation (the trace edits the attention mask: eager or sdpa), the reuse of keys/values
(``lm.kv_limit``), then a Figure 1 style trace ("The Eiffel Tower is not in Chicago. " × 2 in front of
"The Eiffel Tower is in"): the fast trace (``trace.trace``) against one plain forward per intervention
(``trace_reference``) on a sample — the last-position restores of every block (the residual stream;
attention and MLP outputs at three blocks), the ``all`` and ``mentions`` knockouts of every block, three
heads — within ``tolerance.tolerance(dtype, max|logit|)``; the direct attribution's pieces against the
logit difference they sum to; the time of one probe and of the full trace, and the memory.

A row that cannot be computed because an earlier one failed is ``info`` with the value ``skipped``.
``passed(checks)``: no row failed.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.errors import UserError, describe

OK, FAIL, INFO = "ok", "fail", "info"
PROMPT = "The Eiffel Tower is in"
PREPEND = "The Eiffel Tower is not in Chicago. " * 2
MENTION = "Chicago"  # what the mentions knockout masks, whichever targets the tokenizer tells apart

#: Every row ``doctor`` returns, in order (a skipped row keeps its place).
ROWS = ("python", "torch", "transformers", "cuda", "device", "dtype", "model", "blocks", "final norm",
        "unembedding", "post-norms", "attention", "kv reuse", "trace prompt", "trace vs plain", "dla sum",
        "probe time", "trace time", "memory")


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    status: str  # OK | FAIL | INFO
    detail: str = ""
    data: dict = field(default_factory=dict)  # the numbers behind the value (JSON readers)

    def to_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "status": self.status, "detail": self.detail,
                **({"data": self.data} if self.data else {})}


def passed(checks) -> bool:
    return all(c.status != FAIL for c in checks)


def _skipped(name: str, why: str) -> Check:
    return Check(name, "skipped", INFO, why)


def versions() -> list[Check]:
    """Python, torch (and its threads), transformers, CUDA / cuDNN (or why not)."""
    import torch
    import transformers

    rows = [Check("python", platform.python_version(), INFO, f"{platform.system()} {platform.machine()}, "
                  f"{sys.executable}"),
            Check("torch", torch.__version__, INFO, f"CPU threads: {torch.get_num_threads()}"),
            Check("transformers", transformers.__version__, INFO)]
    built = torch.version.cuda
    if torch.cuda.is_available():
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        names = [f"cuda:{i} {torch.cuda.get_device_name(i)} (compute capability "
                 f"{'.'.join(map(str, torch.cuda.get_device_capability(i)))})"
                 for i in range(torch.cuda.device_count())]
        rows.append(Check("cuda", f"CUDA {built}, cuDNN {cudnn or 'absent'}", INFO, "; ".join(names),
                          {"cuda": built, "cudnn": cudnn, "devices": names}))
    else:
        why = (f"torch is built for CUDA {built} but sees no device" if built
               else "this torch is a CPU build")
        rows.append(Check("cuda", "not available", INFO, why, {"cuda": built}))
    return rows


def doctor(lm, progress: Callable[[str], None] | None = None, asked_device: str | None = None,
           asked_dtype: str | None = None) -> list[Check]:
    """Every row of ``ROWS`` for the loaded ``lm`` (module doc); never raises for a failing check."""
    say = progress or (lambda _m: None)
    rows = versions()
    rows += _device_rows(lm, asked_device, asked_dtype)
    layout, parts = _model_rows(lm)
    rows += parts
    attn = _attention_row(lm)
    kv = _kv_row(lm)
    rows += [attn, kv]
    blocked = next((c for c in [*parts, attn, kv] if c.status == FAIL), None)
    if blocked is None:
        rows += _trace_rows(lm, layout, say)
    else:
        why = f"the {blocked.name} check failed"
        rows += [_skipped(n, why) for n in ("trace prompt", "trace vs plain", "dla sum", "probe time", "trace time")]
    rows.append(_memory_row(lm))
    order = {n: i for i, n in enumerate(ROWS)}
    return sorted(rows, key=lambda c: order.get(c.name, len(order)))


def _device_rows(lm, asked_device, asked_dtype) -> list[Check]:
    params = list(lm.model.parameters())
    devices = sorted({str(p.device) for p in params})
    dtypes: dict = {}
    for p in params:
        if p.is_floating_point():
            dtypes[p.dtype] = dtypes.get(p.dtype, 0) + p.numel()
    asked = f"asked {asked_device}" if asked_device else ""
    device = Check("device", lm.device, OK, ", ".join(x for x in (asked, "weights on " + ", ".join(devices)) if x),
                   {"device": lm.device, "weights": devices})
    name = str(lm.dtype).replace("torch.", "")
    embed = lm.model.get_input_embeddings().weight.dtype
    share = {str(k).replace("torch.", ""): v for k, v in dtypes.items()}
    total = sum(share.values()) or 1
    split = ", ".join(f"{k} {v / total:.0%}" for k, v in share.items())
    detail = ", ".join(x for x in (f"asked {asked_dtype}" if asked_dtype else "", f"floating weights: {split}") if x)
    if embed != lm.dtype:
        dtype = Check("dtype", name, FAIL, f"the embedding weights are {embed}, not {lm.dtype}; {detail}", share)
    else:
        dtype = Check("dtype", name, OK, detail, share)
    return [device, dtype]


def _model_rows(lm):
    from engine.hijack.blocks import locate

    model = lm.model
    n_params = sum(p.numel() for p in model.parameters())
    count = f"{n_params / 1e6:.1f} M" if n_params >= 10**6 else f"{n_params:,}"
    where = lm.name if lm.source in ("", lm.name) else f"{lm.name} ({lm.source})"
    rows = [Check("model", type(model).__name__, INFO,
                  f"{where}, {count} parameters, window {lm.max_length} tokens",
                  {"name": lm.name, "class": type(model).__name__, "parameters": n_params, "window": lm.max_length})]
    try:
        layout = locate(lm)
    except UserError as exc:
        rows.append(Check("blocks", "not located", FAIL, str(exc)))
        rows += [_skipped(n, "the blocks were not located") for n in ("final norm", "unembedding", "post-norms")]
        return None, rows
    cfg = model.config.get_text_config()
    kv_heads = getattr(cfg, "num_key_value_heads", None)
    first = layout.blocks[0]
    rows.append(Check("blocks", f"{layout.n_layers} blocks × {layout.n_heads} heads × d_head {layout.d_head}", OK,
                      f"attention {type(first.attn).__name__}, output projection {type(first.out_proj).__name__}, "
                      f"MLP {type(first.mlp).__name__}" + (f", {kv_heads} key/value heads" if kv_heads else ""),
                      {"n_layers": layout.n_layers, "n_heads": layout.n_heads, "d_head": layout.d_head,
                       "kv_heads": kv_heads}))
    eps = getattr(layout.final_norm, "eps", None) or getattr(layout.final_norm, "variance_epsilon", None)
    rows.append(Check("final norm", type(layout.final_norm).__name__, OK,
                      f"eps {eps:.3g}" if isinstance(eps, (int, float)) else ""))
    w = layout.unembed.weight
    tied = w is model.get_input_embeddings().weight
    cap = getattr(cfg, "final_logit_softcapping", None)
    extras = ["tied to the input embedding" if tied else "its own weights",
              "with a bias" if getattr(layout.unembed, "bias", None) is not None else "no bias"]
    if cap:
        extras.append(f"final logits soft-capped at {cap}")
    rows.append(Check("unembedding", f"{type(layout.unembed).__name__} {tuple(w.shape)}", OK, ", ".join(extras),
                      {"shape": list(w.shape), "tied": tied, "softcap": cap}))
    post = [b for b in layout.blocks if b.post_attn_norm is not None or b.post_mlp_norm is not None]
    if post:
        b = post[0]
        rows.append(Check("post-norms", f"{len(post)} of {layout.n_layers} blocks", INFO,
                          f"post-attention {type(b.post_attn_norm).__name__}, "
                          f"post-MLP {type(b.post_mlp_norm).__name__} before the residual adds "
                          "(the direct attribution freezes them)"))
    else:
        rows.append(Check("post-norms", "none", INFO,
                          "the attention and MLP outputs are added to the residual as they are"))
    return layout, rows


def _attention_row(lm) -> Check:
    from engine.hijack import blocks

    impl = str(getattr(lm.model.config, "_attn_implementation", None) or lm.attn_implementation)
    check = getattr(blocks, "check_attention", None)
    if check is not None:
        try:
            check(lm)
        except UserError as exc:
            return Check("attention", impl, FAIL, str(exc))
        return Check("attention", impl, OK, "the trace's hooks can edit its attention mask")
    if impl in ("eager", "sdpa"):
        return Check("attention", impl, OK, "the trace's hooks can edit its attention mask")
    return Check("attention", impl, FAIL, "the trace's hooks edit the attention mask: load with "
                 "attn_implementation='sdpa' or 'eager'")


def _kv_row(lm) -> Check:
    limit = lm.kv_limit
    if limit is None:
        return Check("kv reuse", "any length", OK, "full attention in every block: a prefix's keys/values are exact",
                     {"kv_limit": None})
    if limit == 0:
        return Check("kv reuse", "none", FAIL, "chunked, recurrent or unknown layer types: the probe recomputes "
                     "every prompt and the trace cannot run", {"kv_limit": 0})
    return Check("kv reuse", f"up to {limit} tokens", OK, "sliding-window layers: cached keys/values are exact "
                 "while the sequence fits the window", {"kv_limit": limit})


def _pair(lm):
    from engine.hijack import trace as T
    from engine.hijack.device_check import CHECK_TARGETS

    last = None
    for targets in CHECK_TARGETS:
        try:
            return T.prepare(lm, PROMPT, PREPEND, *targets, mention=MENTION)
        except UserError as exc:
            last = exc
    raise last


def _trace_rows(lm, layout, say) -> list[Check]:
    from engine.hijack import trace as T

    try:
        pair = _pair(lm)
    except Exception as exc:  # noqa: BLE001 -- the doctor reports a failure as a row, never a traceback
        why = "the trace prompt could not be prepared"
        return [Check("trace prompt", "not prepared", FAIL, describe(exc)),
                *[_skipped(n, why) for n in ("trace vs plain", "dla sum", "probe time", "trace time")]]
    rows = [Check("trace prompt", f"{len(pair.ids)} tokens", INFO,
                  f"{PREPEND!r} + {PROMPT!r}, true {pair.target_true!r}, false {pair.target_false!r}, "
                  f"{sum(pair.mentions)} mention tokens, {len(pair.positions)} aligned positions",
                  {"prompt": PROMPT, "prepend": PREPEND, "target_true": pair.target_true,
                   "target_false": pair.target_false, "tokens": len(pair.ids)})]
    say("doctor: one probe")
    probe = _probe_row(lm, pair)
    say("doctor: the fast trace")
    t0 = time.perf_counter()
    try:
        tr = T.trace(lm, pair, heads=True)
    except Exception as exc:  # noqa: BLE001 -- a failing trace (UserError, CUDA error, OOM) is a failed row
        why = "the fast trace failed"
        return [*rows, Check("trace vs plain", "trace failed", FAIL, describe(exc)), _skipped("dla sum", why),
                probe, _skipped("trace time", why)]
    seconds = time.perf_counter() - t0
    n_rows = (len(T.KNOCKOUTS) + layout.n_heads) * layout.n_layers + 3 * layout.n_layers * len(pair.positions)
    timed = Check("trace time", f"{seconds:.2f} s", INFO,
                  f"{len(pair.ids)} tokens, {layout.n_layers} blocks, {n_rows} interventions (all positions, heads)",
                  {"seconds": seconds, "interventions": n_rows})
    try:
        logits = _plain_logits(lm, pair)
        scale = float(logits.abs().max())
        compared = _compare(lm, layout, pair, tr, scale, say)
        dla = _dla_row(lm, layout, tr, logits, scale)
    except Exception as exc:  # noqa: BLE001 -- a failing plain forward is a failed row
        compared = Check("trace vs plain", "plain forwards failed", FAIL, describe(exc))
        dla = _skipped("dla sum", "the plain forwards failed")
    return [*rows, compared, dla, probe, timed]


def _plain_logits(lm, pair):
    """The hijacked prompt's logits at the last position (V,), one plain forward, float32."""
    import torch

    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([list(pair.ids)], device=lm.device), use_cache=False)
    return out.logits[0, -1].float()


def _probe_row(lm, pair) -> Check:
    from engine.hijack.probe import Prober

    prober = Prober(lm)
    text = PREPEND + PROMPT
    try:
        prober.probe(text, [pair.target_true, pair.target_false])  # warm-up
        prober.reset()
        t0 = time.perf_counter()
        res = prober.probe(text, [pair.target_true, pair.target_false])
        seconds = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 -- a failing probe is a failed row
        return Check("probe time", "probe failed", FAIL, describe(exc))
    top = res.top_k[0]
    return Check("probe time", f"{seconds * 1000:.1f} ms", INFO,
                 f"one probe of the {len(pair.ids)}-token prompt, no cached prefix; top token {top.token!r} "
                 f"{top.prob:.3f}", {"seconds": seconds})


def _name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def _samples(layout):
    n, h = layout.n_layers, layout.n_heads
    layers = sorted({0, n // 2, n - 1})
    heads = sorted({(0, 0), (n // 2, h // 2), (n - 1, h - 1)})
    return layers, heads


def _compare(lm, layout, pair, tr, scale, say) -> Check:
    """The fast trace's measures against one plain forward each, on the module doc's sample."""
    import torch

    from engine.hijack import trace_reference as R
    from engine.hijack.tolerance import FP32, HALF_C, tolerance

    tol = tolerance(lm.dtype, scale)
    layers, heads = _samples(layout)
    last = len(pair.positions) - 1
    worst = (-1.0, "", "", 0.0, 0.0)
    count = 0

    def against(label, fast, plain):
        nonlocal worst, count
        count += 1
        for name in ("p_true", "p_false", "logit_diff"):
            a, b = getattr(fast, name), getattr(plain, name)
            d = abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
            if d > worst[0]:
                worst = (d, label, name, a, b)

    say(f"doctor: the plain forwards ({layout.n_layers * 3 + 2 * len(layers) + len(heads)} of them)")
    clean = R.clean_last(lm, pair)
    for layer in range(layout.n_layers):
        against(f"restore resid block {layer} last position", tr.restore["resid"][layer][last],
                R.restore(lm, pair, "resid", layer, last, clean[layer]))
        for v in ("all", "mentions"):
            against(f"knockout {v} block {layer}", tr.knockout[v][layer], R.knockout(lm, pair, v, layer, tr.window))
    for layer in layers:
        for kind in ("attn", "mlp"):
            against(f"restore {kind} block {layer} last position", tr.restore[kind][layer][last],
                    R.restore(lm, pair, kind, layer, last))
    for layer, h in heads:
        against(f"head L{layer}H{h} zero-ablated", tr.heads[layer][h], R.zero_head(lm, pair, layer, h))
    d, label, name, a, b = worst
    rule = (f"{FP32:g} in {_name(lm.dtype)}" if lm.dtype in (torch.float32, torch.float64) else
            f"{HALF_C:g}·eps({_name(lm.dtype)})·max|logit| {scale:.3g}")
    data = {"max_abs_diff": d, "tolerance": tol, "scale": scale, "compared": count, "worst": label,
            "measure": name, "fast": a, "plain": b}
    where = f"{label}, {name}: fast {a:+.6g} plain {b:+.6g}"
    if d <= tol:
        return Check("trace vs plain", f"|Δ| {d:.2g} ≤ {tol:.2g}", OK,
                     f"{count} interventions (P(true), P(false), logit diff), tolerance {rule}; largest at {where}",
                     data)
    return Check("trace vs plain", f"|Δ| {d:.3g} > {tol:.2g}", FAIL,
                 f"the fast trace differs from the plain forward at {where} (|Δ| {d:.3g}, tolerance {rule}; "
                 f"{count} interventions compared)", data)


def _dla_row(lm, layout, tr, logits, scale) -> Check:
    """embed + Σ attn + Σ mlp + bias against the logit difference before soft-capping, and each block's
    heads against its attention piece (when the output projection has no bias)."""
    from engine.hijack.tolerance import tolerance

    d = tr.dla
    total = d["embed"] + sum(d["attn"]) + sum(d["mlp"]) + d["bias"]
    cap = getattr(lm.model.config.get_text_config(), "final_logit_softcapping", None)
    if cap:  # the pieces sum to the logits before the cap: undo it on the plain forward's two logits
        t, f = (float(logits[i]) for i in (tr.pair.true_id, tr.pair.false_id))
        target = cap * (math.atanh(t / cap) - math.atanh(f / cap))
        what = "the plain forward's logit difference before soft-capping"
    else:
        target = tr.hijacked.logit_diff
        what = "the trace's logit difference"
    tol = tolerance(lm.dtype, scale)
    diff = abs(total - target) if math.isfinite(total) else math.inf
    heads_diff = None
    if all(getattr(b.out_proj, "bias", None) is None for b in layout.blocks) and d["heads"] and d["heads"][0]:
        heads_diff = max(abs(sum(row) - a) for row, a in zip(d["heads"], d["attn"]))
    worst = max(diff, heads_diff or 0.0)
    data = {"sum": total, "logit_diff": target, "abs_diff": diff, "heads_abs_diff": heads_diff, "tolerance": tol}
    extra = "" if heads_diff is None else f"; per block, the heads' sum against attn: largest |Δ| {heads_diff:.2g}"
    detail = (f"embed + Σ attn + Σ mlp + bias = {total:+.6g} against {what} {target:+.6g} "
              f"(|Δ| {diff:.2g}){extra}; tolerance {tol:.2g}")
    if worst <= tol:
        return Check("dla sum", f"|Δ| {worst:.2g} ≤ {tol:.2g}", OK, detail, data)
    return Check("dla sum", f"|Δ| {worst:.3g} > {tol:.2g}", FAIL, "the direct attribution does not add up: " + detail,
                 data)


def _memory_row(lm) -> Check:
    import psutil
    import torch

    rss = psutil.Process().memory_info().rss
    peak = getattr(psutil.Process().memory_info(), "peak_wset", None)  # Windows
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    except ImportError:
        pass
    mib = 2 ** 20
    data = {"rss": rss, "peak_rss": peak}
    parts = [f"now {rss / mib:.0f} MiB"]
    value = f"peak RSS {peak / mib:.0f} MiB" if peak else f"RSS {rss / mib:.0f} MiB"
    if lm.device.startswith("cuda") and torch.cuda.is_available():
        dev = torch.device(lm.device)
        cuda_peak = torch.cuda.max_memory_allocated(dev)
        data["cuda_max_allocated"] = cuda_peak
        value += f", CUDA max allocated {cuda_peak / mib:.0f} MiB"
        parts.append(f"CUDA reserved {torch.cuda.memory_reserved(dev) / mib:.0f} MiB")
    return Check("memory", value, INFO, ", ".join(parts) + " (this process, model loading included)", data)
