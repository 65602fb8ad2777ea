"""``lca-tui doctor``: what to run first on a new box (engine.hijack.doctor).

Loads the model as the other commands do (``--model``, default the embedded SmolLM2; ``--device auto``;
``--dtype auto``: bf16 on CUDA, fp32 on the CPU) and checks, one row each: the versions (Python, torch,
transformers, CUDA / cuDNN), the device and dtype actually used, the model's family and the parts the
trace hooks (blocks, heads, d_head, final norm, unembedding, post-norms), the attention implementation,
the reuse of keys/values, then a Figure 1 style trace: the fast trace against one plain forward per
intervention on a sample (within the dtype's tolerance, engine.hijack.tolerance), the direct
attribution's sum against the logit difference, the time of one probe and of one full trace, memory.

Exit code 0 when every check passes, 1 when one fails, 2 (one line on stderr) for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub):
    from lca_tui.commands.probe import add_model_flags

    p = sub.add_parser("doctor", help="check this box: versions, device, the model's parts, the trace's accuracy",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p)
    p.add_argument("--json", action="store_true",
                   help='print {"ok": bool, "checks": [{"name", "value", "status", "detail", "data"}]}')
    return p


def run(args) -> int:
    from engine.hijack.doctor import doctor, passed
    from lca_tui.commands.probe import load_model

    lm = load_model(args)
    checks = doctor(lm, progress=lambda m: print(f"lca-tui: {m}", file=sys.stderr, flush=True),
                    asked_device=args.device, asked_dtype=args.dtype)
    ok = passed(checks)
    if args.json:
        print(json.dumps({"ok": ok, "model": lm.name, "checks": [c.to_dict() for c in checks]},
                         ensure_ascii=False, default=str))
    else:
        _print(checks, ok)
    return 0 if ok else 1


def _print(checks, ok: bool) -> None:
    """A rich table on a terminal; plain aligned lines (one per check, never wrapped) in a pipe or a log."""
    from rich.console import Console

    console = Console()
    failed = [c.name for c in checks if c.status == "fail"]
    verdict = "every check passed" if ok else f"failed: {', '.join(failed)}"
    if not console.is_terminal:
        widths = [max(len(getattr(c, k)) for c in checks) for k in ("name", "value", "status")]
        for c in checks:
            print(f"{c.name:<{widths[0]}}  {c.value:<{widths[1]}}  {c.status:<{widths[2]}}  {c.detail}".rstrip())
        print(verdict)
        return
    from rich.table import Table
    from rich.text import Text

    style = {"ok": "green", "fail": "bold red", "info": "dim"}
    table = Table(title="lca-tui doctor", title_justify="left")
    for col in ("check", "value", "", "detail"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.name, c.value, Text(c.status, style=style.get(c.status, "")), c.detail)
    console.print(table)
    console.print(Text(verdict, style="green" if ok else "bold red"))
