"""`mindfed state | enable | disable | new-instance key=value ... | query-instance`: the scheduler's REST plane for
operators (spec §6.1). Human output by default, the scheduler's JSON with `--json`; a refusal prints MindSpore's
`error_message` and exits 1.

The operator token comes from MINDFED_OPERATOR_TOKEN or MINDFED_OPERATOR_TOKEN_FILE (as the scheduler reads it);
`--ca_file` verifies an HTTPS scheduler.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

from mindfed.scheduler.operator_auth import operator_headers

DEFAULT_SCHEDULER = "http://127.0.0.1:11202"
# command -> (REST path, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "state": ("/state", "the cluster state and its servers"),
    "enable": ("/enableFLS", "enable the training job (Disable -> Running)"),
    "disable": ("/disableFLS", "disable the training job (Running -> Disable)"),
    "new-instance": ("/newInstance", "start a new instance with hyper-parameter overrides key=value ..."),
    "query-instance": ("/queryInstance", "the current hyper-parameters and servers"),
}
REFUSED = 1  # the scheduler answered {"code":"1"}
UNREACHABLE = 3


def add_arguments(sub: Any) -> None:
    """One subparser per command of `COMMANDS` on `sub` (argparse's subparsers action)."""
    for name, (_path, help_text) in COMMANDS.items():
        parser = sub.add_parser(name, help=help_text)
        parser.add_argument("--scheduler", default=DEFAULT_SCHEDULER, metavar="URL",
                            help=f"the scheduler's address (default {DEFAULT_SCHEDULER})")
        parser.add_argument("--ca_file", default="", help="CA certificate (PEM) verifying an HTTPS scheduler")
        parser.add_argument("--json", action="store_true", help="print the scheduler's JSON answer")
        parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
        if name == "new-instance":
            parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                                help="hyper-parameters, e.g. start_fl_job_threshold=2 client_learning_rate=0.01 "
                                     "(values read as JSON when they parse, else as strings)")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs as newInstance's JSON body: `2` -> 2, `0.1` -> 0.1, `true` -> true, `abc` -> "abc".

    Raises:
        ValueError: an item without `=` or with an empty key.
    """
    body: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        body[key.strip()] = value
    return body


def call(scheduler: str, path: str, body: bytes | None, ca_file: str = "", timeout_s: float = 10.0,
         env: dict[str, str] | None = None) -> dict[str, Any]:
    """POST `body` to `scheduler + path` with the operator's token; the JSON answer, whatever its HTTP status.

    Raises:
        OSError: the scheduler cannot be reached, or did not answer JSON.
    """
    headers = {"Content-Type": "application/json", **operator_headers(os.environ if env is None else env)}
    request = urllib.request.Request(scheduler.rstrip("/") + path, data=body or b"", headers=headers, method="POST")
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:  # noqa: S310
            text = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:  # 400/401 carry the scheduler's error body
        text = exc.read().decode("utf-8", errors="replace")
    try:
        answer = json.loads(text)
    except ValueError:
        raise OSError(f"the scheduler at {scheduler} did not answer JSON: {text[:200]!r}") from None
    if not isinstance(answer, dict):
        raise OSError(f"the scheduler at {scheduler} answered {text[:200]!r}")
    return answer


def human(command: str, answer: dict[str, Any]) -> str:
    """The answer for a person: the message, the cluster state, the servers, the hyper-parameters."""
    lines = [str(answer.get("message", ""))]
    if "cluster_state" in answer:
        lines.append(f"cluster state: {answer['cluster_state']}")
    nodes = answer.get("nodes", [])
    if command in ("state", "query-instance"):
        lines.append(f"servers: {len(nodes)}")
        lines.extend(f"  {n.get('node_id', '')}  {n.get('role', '')}  {n.get('tcp_address', '')}" for n in nodes)
    result = answer.get("result")
    if isinstance(result, dict):
        lines.append("hyper-parameters:")
        lines.extend(f"  {key} = {json.dumps(value)}" for key, value in sorted(result.items()))
    return "\n".join(line for line in lines if line)


def run(args: argparse.Namespace) -> int:
    path = COMMANDS[args.command][0]
    body = None
    if args.command == "new-instance":
        try:
            body = json.dumps(parse_overrides(args.overrides)).encode()
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        answer = call(args.scheduler, path, body, args.ca_file, args.timeout)
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        print(f"error: cannot reach the scheduler at {args.scheduler}: {reason}", file=sys.stderr)
        return UNREACHABLE
    refused = answer.get("code") != "0"
    if args.json:
        print(json.dumps(answer, sort_keys=True))
    elif refused:
        print(f"error: {answer.get('error_message', answer)}", file=sys.stderr)
    else:
        print(human(args.command, answer))
    return REFUSED if refused else 0
