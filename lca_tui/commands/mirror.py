"""``lca-tui mirror --run DIR --y Y --y-tilde Y2 [--r R] [--seed S] [--sweep] [--json]``: the hijack
mirror of a trained run (Sec. 5.5, issue #19; ``engine.lca.hijack_mirror``).

A context for y with round(r·(L-1)) of its tokens drawn for ỹ: clean / hijacked / knockout /
knockout_rest as {p_true, p_false, logit_diff} (the LLM trace's names), the prediction and the
flip, and each position's contribution to the logits of y and ỹ. ``--sweep`` adds the means over
``--n`` contexts for r = 0, 0.1, ..., 1. Tokens: an id or m bits (``01011``).
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "mirror", help="where a trained run's one-layer model is hijacked: per-token contributions, knockout",
        description="Draw a context for y with a fraction r of its tokens drawn for ỹ and show, for the "
                    "run's model (eq. 4.1), each position's exact contribution to the logits of y and ỹ, "
                    "the clean, hijacked and knockout probabilities and the flip.")
    p.add_argument("--run", required=True, metavar="DIR", help="a run directory (its checkpoint)")
    p.add_argument("--y", required=True, metavar="Y", help="the true latent: a token id or m bits")
    p.add_argument("--y-tilde", required=True, metavar="Y2", help="the mixed-in latent ỹ: a token id or m bits")
    p.add_argument("--r", default="0.5", metavar="R", help="fraction of the L-1 context tokens drawn for ỹ (0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the context draw (0)")
    p.add_argument("--sweep", action="store_true", help="also the means over --n contexts for r = 0, 0.1, ..., 1")
    p.add_argument("--n", type=int, default=256, metavar="N", help="contexts a ratio in the sweep (256)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def run(args: argparse.Namespace) -> int:
    from engine import threads
    from engine.lca.hijack_mirror import mirror_sweep, trace_mirror
    from engine.lca.inspection import load_model_from_run

    threads.apply(threads.choose(getattr(args, "threads", None)).threads)
    cfg, model, step = load_model_from_run(args.run)
    tr = trace_mirror(cfg, model, args.y, args.y_tilde, args.r, seed=args.seed)
    sw = mirror_sweep(cfg, model, tr.y, tr.y_tilde, n=args.n, seed=args.seed) if args.sweep else None
    if args.json:
        out = {**tr.to_dict(), "run": str(args.run), "step": step}
        if sw is not None:
            out["sweep"] = sw.to_dict()
        print(json.dumps(out, allow_nan=False))
        return 0
    _print(tr, sw, cfg, step)
    return 0


def _print(tr, sw, cfg, step) -> None:
    bits = f"0{tr.m}b"
    print(f"{cfg.summary()} · step {step}")
    print(f"y = {format(tr.y, bits)} ({tr.y}), ỹ = {format(tr.y_tilde, bits)} ({tr.y_tilde}), r = {tr.r:g}: "
          f"{tr.k} of {tr.L - 1} context tokens drawn for ỹ, seed {tr.seed}")
    print(f"{'context':<16}{'P(y)':>9}{'P(ỹ)':>9}{'logit diff':>12}  prediction")
    for name in ("clean", "hijacked", "knockout", "knockout_rest"):
        v = getattr(tr, name)
        print(f"{name:<16}{v['p_true']:>9.4f}{v['p_false']:>9.4f}{v['logit_diff']:>+12.4f}  "
              f"{format(v['prediction'], bits)}")
    f = tr.flip
    print(f"prediction leaves y: {f['away_from_true']} · predicts ỹ: {f['to_false']} · "
          f"knockout restores y: {f['restored']}")
    for g, v in tr.by_source.items():
        print(f"  from {g:<5} ({v['count']:>3} tokens): attention {v['attention']:.4f}, "
              f"to y {v['to_true']:+.4f}, to ỹ {v['to_false']:+.4f}, to diff {v['to_diff']:+.4f}")
    if sw is not None:
        print(f"sweep over {sw.n} contexts a ratio:  r  P(y)  P(ỹ)  predicts ỹ | knockout: P(y)  predicts ỹ")
        for p in sw.points:
            h, k = p["hijacked"], p["knockout"]
            print(f"  {p['r']:.1f}  {h['p_true']:.3f}  {h['p_false']:.3f}  {h['to_false']:.3f} | "
                  f"{k['p_true']:.3f}  {k['to_false']:.3f}")
