"""The flags of the commands that run over CounterFact-style records (``trace --dataset``, ``repair``):
the records (--dataset, --limit, --seed, --relation) and the hijack (--scheme, --template, --n)."""

from __future__ import annotations


def add_record_flags(p, dataset: str, n: str, limit: str) -> None:
    """--dataset/--scheme/--template/--n/--limit/--seed/--relation, with each command's own words for
    the dataset, n and the limit."""
    p.add_argument("--dataset", metavar="D", help=dataset)
    p.add_argument("--scheme", help="the hijack scheme (see `lca-tui schemes`)")
    p.add_argument("--template", metavar="T", help="the custom scheme's template")
    p.add_argument("--n", type=int, metavar="K", help=n)
    p.add_argument("--limit", type=int, metavar="N", help=limit)
    p.add_argument("--seed", type=int, metavar="S", help="shuffle the records with this seed before --limit")
    p.add_argument("--relation", metavar="ID", help="keep only these relation ids")
