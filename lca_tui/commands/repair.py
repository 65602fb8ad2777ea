"""``lca-tui repair``: defenses against the hijack, scored on held-out records (engine.hijack.repair).

The records at even positions select (heads by their ablation rise, alpha from a small grid: the
largest ES drop with clean accuracy down by at most 0.02), the records at odd positions evaluate:
ES before -> after with a 95% CI of the drop and a paired sign test, accuracy on the clean prompts
(n = 0) and under the reverse scheme before -> after (what the defense costs when the context is
right), the mean change of log P(true), and the frontier over alpha.

    lca-tui repair --dataset builtin --scheme not-think --n 3 --limit 40
    lca-tui repair --dataset builtin --scheme not-think --n 3 --defense heads attention --alpha 0.5
    lca-tui repair --dataset builtin --scheme not-think --n 3 --defense-file my_heads.json --json

Defenses: none, drop-context (the question alone: the ceiling), heads, attention, contrastive, steer
(``engine.hijack.defenses.DEFENSES``). A defense file is the JSON a defense is saved as
(``{"name", "params"}``, a steering vector beside it as safetensors): it is taken as it is.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub):
    from engine.hijack.defenses import DEFENSES
    from lca_tui.commands.probe import add_model_flags
    from lca_tui.commands.record_options import add_record_flags

    p = sub.add_parser("repair", help="defenses against the hijack, scored on held-out records",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p)
    add_record_flags(p, dataset="builtin, a JSON file of CounterFact records or a datasets id",
                     n="prepended sentences (>= 1)", limit="use at most N records (>= 2: half select, half evaluate)")
    p.add_argument("--defense", nargs="+", metavar="NAME", choices=list(DEFENSES), help=(
        "defenses to score (default: every one but none): " + ", ".join(DEFENSES)))
    p.add_argument("--alpha", type=float, metavar="A", help="fix alpha instead of choosing it on the selection half")
    p.add_argument("--defense-file", nargs="+", metavar="F", help="a saved defense (JSON), scored as it is")
    p.add_argument("--batch-size", type=int, default=8, metavar="B", help="sequences per forward (default 8)")
    p.add_argument("--json", action="store_true", help=(
        'print {"model", "scheme", "n", "selection", "evaluation", "defenses": [{"name", "params", '
        '"es_before", "es_after", "es_ci", "sign_p", "clean_accuracy_before", ...}]}'))
    return p


def _check(args):
    from engine.errors import UserError

    if args.dataset is None or args.scheme is None or args.n is None:
        raise UserError("repair needs --dataset D --scheme S --n K")
    if args.n < 1:
        raise UserError(f"--n must be at least 1 (a defense undoes prepended sentences), not {args.n}")
    if args.limit is not None and args.limit < 2:
        raise UserError(f"--limit must be at least 2 (one record selects, one evaluates), not {args.limit}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, not {args.batch_size}")


def run(args) -> int:
    from engine.errors import UserError
    from engine.hijack.counterfact import load_counterfact
    from engine.hijack.defenses import Defense, check_defense, check_for
    from engine.hijack.repair import repair
    from engine.hijack.schemes import check_scheme, hijack_sentence
    from lca_tui.commands.probe import load_model

    _check(args)
    scheme = check_scheme(args.scheme)
    files = [Defense.load(f) for f in args.defense_file or ()]  # a bad file fails before the model loads
    records = load_counterfact(args.dataset, relation=args.relation, limit=args.limit, seed=args.seed)
    if len(records) < 2:
        raise UserError("repair needs at least 2 records: check the dataset, --relation and --limit")
    hijack_sentence(records[0], scheme, args.template)  # a bad template fails before the model loads
    names = list(args.defense) if args.defense else ([] if files else
                                                     ["drop-context", "heads", "attention", "contrastive", "steer"])
    if args.alpha is not None:  # alpha's range, before the model loads
        check_defense(Defense("none", args.alpha))
        if "attention" in names and args.alpha > 1:
            raise UserError(f"the attention defense keeps alpha in [0, 1] (a share of the attention), not {args.alpha}")
    lm = load_model(args)
    for d in files:
        check_for(lm, d)
    data = repair(lm, records, scheme, args.n, defenses=[*names, *files], alpha=args.alpha,
                  template=args.template, batch_size=args.batch_size, ctx=_context())
    for d in data["defenses"]:
        d.pop("defense", None)  # the object; its JSON is name + params
    if args.json:
        from engine.atomic import jsonable

        print(json.dumps(jsonable(data), ensure_ascii=False, allow_nan=False, default=str))
    else:
        _print(data)
    return 0


def _context():
    from engine.job_context import JobContext

    def progress(done, total, partial=None):
        print(f"lca-tui: repair: {done}/{total}", file=sys.stderr, flush=True)

    return JobContext(progress=progress) if sys.stderr.isatty() else None


def _print(data: dict) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from textnum import number

    def arrow(before, after) -> str:
        return f"{number(before, '.2f')}→{number(after, '.2f')}"

    console = Console()
    console.print(f"[b]{data['model']}[/b] {data['scheme']} n = {data['n']}: selected on {len(data['selection'])} "
                  f"records, evaluated on {len(data['evaluation'])}")
    table = Table(title="evaluation half, before→after (ES: hijack success, lower is better; clean/reverse: "
                        "accuracy; CI 95% of the ES drop, p sign test)",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("defense", no_wrap=True)
    for col in ("ES", "drop CI", "p", "clean", "reverse", "Δlog P"):  # p: sign test; CI: 95%
        table.add_column(col, justify="right", no_wrap=True)
    settings = []
    for d in data["defenses"]:
        lo, hi = d["es_ci"]
        table.add_row(d["name"], arrow(d["es_before"], d["es_after"]), f"{number(lo, '+.2f')}..{number(hi, '+.2f')}",
                      number(d["sign_p"], ".2g"), arrow(d["clean_accuracy_before"], d["clean_accuracy_after"]),
                      arrow(d.get("reverse_accuracy_before"), d.get("reverse_accuracy_after")),
                      number((d.get("log_p_true_change") or {}).get("mean"), "+.2f"))
        p = dict(d["params"])
        if "heads" in p:
            p["heads"] = " ".join(f"L{b}H{h}" for b, h in p["heads"])
        settings.append(f"{d['name']}: " + ", ".join(f"{k} {v}" for k, v in p.items()))
    console.print(table)
    console.print("\n".join(settings), highlight=False, markup=False)
