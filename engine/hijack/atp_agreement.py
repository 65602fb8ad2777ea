"""How well attribution patching (``engine.hijack.atp``) agrees with the exact trace
(``engine.hijack.trace``), per measure family, on one prompt.

An effect is a measure's ``logit_diff`` minus the hijacked run's. Families: ``restore_resid`` /
``restore_attn`` / ``restore_mlp`` (every block × aligned position), each knockout variant by its
measure name (``knockout``, ``knockout_window``, ... : every block) and ``heads`` (zero ablation, every
block × head). Per family:

- ``spearman``: Spearman's rank correlation of the estimated effects with the exact ones (ties
  ranked by their mean; None when either side is constant);
- ``recall@k`` (k = 5, 10): the share of the exact trace's k largest |effects| that are among the
  estimate's k largest;
- ``misses``: the components with the largest |exact − estimate| (component, exact, estimate);
- saturation diagnostic: the attention entropy (nats) of the last query in the hijacked run, and the
  largest attention weight, of the head (``heads``) or the block's heads (the others: their least
  entropy) where it misses most, beside the median over every head: a nearly one-hot softmax has
  almost no gradient, the known way attribution patching fails (Kramár et al. 2024). A miss at
  high entropy points elsewhere (cancellation of direct and indirect paths, or the curvature a
  large restore has).

Where the live Trace view marks a component as missed (``disagrees``): an estimated effect more than
``max(DISAGREE_ABS, DISAGREE_REL · |exact|)`` from the exact one, on the ``logit_diff`` effects.
"""

from __future__ import annotations

import math
import statistics

from engine.hijack.measures import KNOCKOUTS, RESTORE_KINDS, knockout_measure

KS = (5, 10)
MISSES = 3
#: The disagreement rule (``disagrees``): |exact − estimate| > max(DISAGREE_ABS, DISAGREE_REL · |exact|).
DISAGREE_ABS = 0.5
DISAGREE_REL = 0.25
DISAGREE_RULE = f"|exact − estimate| > max({DISAGREE_ABS}, {DISAGREE_REL:.0%} of |exact|) on logit_diff effects"


def disagrees(exact: float, estimate: float) -> bool:
    """Whether an estimated effect misses the exact one beyond the stated rule (``DISAGREE_RULE``)."""
    return abs(exact - estimate) > max(DISAGREE_ABS, DISAGREE_REL * abs(exact))


def disagreements(exact: dict, estimate: dict) -> list[dict]:
    """Every component (of every family) where ``estimate`` disagrees with ``exact`` (both
    ``Trace.to_dict`` JSON) by ``disagrees``: family, component, block, index (position index among
    the aligned ones, head, or -1 for a knockout), exact and estimated effect."""
    ex, es = _effects(exact), _effects(estimate)
    out = []
    for name, rows in ex.items():
        for (component, (block, index), a), (_, _, b) in zip(rows, es[name]):
            if disagrees(a, b):
                out.append({"family": name, "component": component, "block": block, "index": index,
                            "exact": a, "estimate": b})
    return out


def n_components(d: dict) -> int:
    """How many components ``disagreements`` compares in a trace's JSON."""
    return sum(len(rows) for rows in _effects(d).values())


def attention_entropy(lm, pair) -> list[list[dict]]:
    """Per block, per head: the last query's attention in the hijacked run (one eager forward):
    ``entropy`` (nats), ``max`` (the largest weight), ``sink`` (the weight on position 0)."""
    import torch

    from engine.hijack.kv import extend

    with torch.inference_mode(), lm.eager_attention():
        _, out, _ = extend(lm, None, [list(pair.ids)], keep=1, attentions=True, want_cache=False)
    rows = []
    for att in out.attentions:
        p = att[0, :, -1, :].float()
        ent = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
        rows.append([{"entropy": float(e), "max": float(m), "sink": float(s)}
                     for e, m, s in zip(ent, p.max(-1).values, p[:, 0])])
    return rows


def _effects(d: dict) -> dict[str, list[tuple[str, tuple, float]]]:
    """The effects of a trace's JSON (``Trace.to_dict``) by family: [(component, (block, index), effect)]."""
    h = d["hijacked"]["logit_diff"]
    toks = d["tokens"]
    out: dict = {}
    for kind in RESTORE_KINDS:
        out[f"restore_{kind}"] = [
            (f"L{e['layer']} {kind} @{p['index']} {toks[p['index']]!r}", (e["layer"], j), m["logit_diff"] - h)
            for e in d["layers"] for j, (p, m) in enumerate(zip(d["positions"], e["restore"][kind]))]
    for v in KNOCKOUTS:
        name = knockout_measure(v).name
        out[name] = [(f"L{e['layer']} {name}", (e["layer"], -1), e[name]["logit_diff"] - h) for e in d["layers"]]
    out["heads"] = [(f"L{li}H{hi}", (li, hi), x["ablated"]["logit_diff"] - h)
                    for li, row in enumerate(d["heads"]) for hi, x in enumerate(row)]
    return out


def _ranks(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation (ties by mean rank); None with fewer than 3 values or a constant side."""
    if len(a) < 3:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return cov / math.sqrt(va * vb)


def recall_at(exact: list[float], est: list[float], k: int) -> float | None:
    """The share of ``exact``'s k largest |values| among ``est``'s k largest (None when k > n)."""
    if k > len(exact):
        return None
    top = set(sorted(range(len(exact)), key=lambda i: -abs(exact[i]))[:k])
    got = set(sorted(range(len(est)), key=lambda i: -abs(est[i]))[:k])
    return len(top & got) / k


def _saturation(family: str, where: tuple, entropy) -> dict | None:
    if entropy is None:
        return None
    block, index = where
    heads = entropy[block]
    if family == "heads":
        h = heads[index]
        return {"block": block, "head": index, **h}
    h = min(range(len(heads)), key=lambda i: heads[i]["entropy"])
    return {"block": block, "head": h, **heads[h], "block_mean_entropy": statistics.fmean(x["entropy"] for x in heads)}


def agreement(exact: dict, estimate: dict, entropy=None, ks=KS, misses: int = MISSES) -> dict:
    """The agreement of ``estimate`` with ``exact`` (both ``Trace.to_dict`` JSON) per family (module
    doc); ``entropy``: ``attention_entropy`` of the pair, for the saturation diagnostic."""
    ex, es = _effects(exact), _effects(estimate)
    families = {}
    for name, rows in ex.items():
        a = [r[2] for r in rows]
        b = [r[2] for r in es[name]]
        gaps = sorted(range(len(a)), key=lambda i: -abs(a[i] - b[i]))[:misses]
        families[name] = {
            "n": len(a), "spearman": spearman(a, b),
            **{f"recall@{k}": recall_at(a, b, k) for k in ks},
            "largest_exact": max((abs(x) for x in a), default=0.0),
            "misses": [{"component": rows[i][0], "exact": a[i], "estimate": b[i],
                        "saturation": _saturation(name, rows[i][1], entropy)} for i in gaps],
        }
    out = {"effect": "logit_diff minus the hijacked run's", "families": families}
    if entropy is not None:
        flat = [h["entropy"] for row in entropy for h in row]
        out["entropy_median"] = statistics.median(flat)
        out["max_weight_median"] = statistics.median(h["max"] for row in entropy for h in row)
    return out


def summary_lines(agree: dict) -> list[str]:
    """One line per family (Spearman, recall@k) and its largest miss, for the CLI's table."""
    lines = []
    for name, f in agree["families"].items():
        rho = "—" if f["spearman"] is None else f"{f['spearman']:+.3f}"
        rec = "  ".join(f"{k} {'—' if v is None else f'{v:.1f}'}" for k, v in f.items() if k.startswith("recall@"))
        m = f["misses"][0] if f["misses"] else None
        miss = "" if m is None else f"; worst {m['component']} exact {m['exact']:+.3f} est {m['estimate']:+.3f}"
        if m and m["saturation"]:
            s = m["saturation"]
            miss += f" (H{s['head']} entropy {s['entropy']:.2f}, max weight {s['max']:.2f})"
        lines.append(f"{name:<26} n {f['n']:>4}  spearman {rho}  {rec}{miss}")
    if "entropy_median" in agree:
        lines.append(f"attention entropy of the last query, median over heads: {agree['entropy_median']:.2f} nats "
                     f"(median max weight {agree['max_weight_median']:.2f})")
    return lines
