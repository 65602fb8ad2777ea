"""CLI subcommands. Each module defines ``add_parser(subparsers)`` and ``run(args) -> int``.

Modules import torch/transformers inside ``run`` so that ``lca-tui --help`` stays instant.
"""
