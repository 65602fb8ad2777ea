"""``lca-tui probe``: next-token probabilities of a prompt and of tracked targets.

Targets are scored exactly as written: after "The Eiffel Tower is in" use " Paris" (with the
leading space). A multi-token target's probability is the product of its token probabilities.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_model_flags(p: argparse.ArgumentParser, several: bool = False) -> None:
    """``--model/--device/--dtype/--trust-remote-code``, shared with ``hijack`` (``several``: repeatable)."""
    if several:
        p.add_argument("--model", metavar="M", action="append", default=argparse.SUPPRESS,
                       help="alias (smollm2-135m, the default; gemma3-270m), HF id or local folder; "
                            "repeat it to compare models on the same records")
    else:
        p.add_argument("--model", metavar="M", default=argparse.SUPPRESS,
                       help="alias (smollm2-135m, the default; gemma3-270m), HF id or local folder")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    p.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16 (default: auto)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow the model repository's own Python code (off unless asked)")


def model_names(args) -> list:
    """The models the flags name, in order (``[None]``: the default model)."""
    names = getattr(args, "model", None)
    if names is None or isinstance(names, str):
        return [names]
    return list(names) or [None]


def load_model(args, name=argparse.SUPPRESS):
    """Load the model named by the flags (or ``name``); loading messages go to stderr."""
    from engine.hijack.lm import load_lm

    def say(msg: str) -> None:
        print(f"lca-tui: {msg}", file=sys.stderr, flush=True)

    if name is argparse.SUPPRESS:
        name = model_names(args)[0]
    return load_lm(name, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                   progress=say)


def add_parser(sub):
    p = sub.add_parser("probe", help="top-k next tokens and target probabilities for a prompt",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p)
    p.add_argument("--prompt", required=True, help="the prompt text")
    p.add_argument("--target", action="append", default=[], metavar="TEXT",
                   help='a target to track, e.g. " Paris" (repeatable)')
    p.add_argument("--top-k", type=int, default=10, metavar="K", help="next tokens to list (default: 10)")
    p.add_argument("--json", action="store_true",
                   help='print {"model", "top_k": [{"token", "prob"}], "targets": [...]}')
    return p


def run(args) -> int:
    from engine.errors import UserError
    from engine.hijack.efficacy import oom_guard
    from engine.hijack.probe import Prober

    if not args.prompt.strip():  # cheap checks before the model loads
        raise UserError("the prompt is empty: pass some text with --prompt")
    if any(not t for t in args.target):
        raise UserError("a --target is empty: give a non-empty string such as ' Paris'")
    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1, not {args.top_k}")
    lm = load_model(args)
    try:
        res = Prober(lm).probe(args.prompt, args.target, top_k=args.top_k)
    except (RuntimeError, MemoryError) as exc:
        oom_guard(exc, None)
        raise
    for t in res.targets:
        if not t.exact:
            print(f"lca-tui: note: the prompt's tokens are not a prefix of prompt + {t.target!r}; "
                  "that target is scored by its own tokens", file=sys.stderr)
    if res.truncated:
        print(f"lca-tui: the prompt was cut by {res.truncated} tokens from the left to fit the "
              f"model's window of {lm.max_length}", file=sys.stderr)
    if args.json:
        print(json.dumps({
            "model": lm.name,
            "top_k": [{"token": t.token, "prob": t.prob} for t in res.top_k],
            "targets": [{"target": t.target, "prob": t.prob, "first_token_prob": t.first_token_prob,
                         "rank": t.rank, "tokens": t.n_tokens, "exact": t.exact} for t in res.targets],
        }, ensure_ascii=False))
        return 0

    from rich.console import Console
    from rich.table import Table

    console = Console()
    top = Table(title=f"Next token ({lm.name})",
                title_justify="left")
    for col, just in (("rank", "right"), ("token", "left"), ("prob", "right"), ("logit", "right")):
        top.add_column(col, justify=just)
    for t in res.top_k:
        top.add_row(str(t.rank), repr(t.token), f"{t.prob:.4f}", f"{t.logit:.2f}")
    console.print(top)
    if res.targets:
        tg = Table(title="Targets", title_justify="left")
        for col, just in (("target", "left"), ("prob", "right"), ("first-token prob", "right"),
                          ("rank", "right"), ("tokens", "right")):
            tg.add_column(col, justify=just)
        for t in res.targets:
            tg.add_row(repr(t.target), f"{t.prob:.4g}", f"{t.first_token_prob:.4g}", str(t.rank),
                       str(t.n_tokens))
        console.print(tg)
    return 0
