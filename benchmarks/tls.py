"""TLS against plain in the same run (issue 10's figures; goal: TLS >= 0.7 of plain).

Run: `python -m benchmarks.tls [--json PATH] [--repeats N]`.

Node-to-node transport: a 10M-float partial sum over TcpEndpoint, plain TCP vs mutual TLS (benchmarks/tls_node.py).
"""

from __future__ import annotations

import argparse

from benchmarks.probe import add_common_args, print_table, write_json
from benchmarks.tls_node import NODE_HEADERS, node_transport_figures


def main(argv: list[str] | None = None) -> None:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tls", description=__doc__.splitlines()[0])
    add_common_args(parser, default_repeats=7)
    args = parser.parse_args(argv)
    figures: dict[str, float | int | str] = {}
    rows, node = node_transport_figures(args.repeats)
    print_table(NODE_HEADERS, rows)
    figures.update(node)
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
