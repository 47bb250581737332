"""Entry point of one server process: `python -m mindfed.server.process --yaml_config ... --http_server_address ...`.

The launcher (`mindfed server`, run_server.py) starts one of these per port; it can also be run by hand.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mindfed.api.server_job import ON_STOP_CHOICES, FLServerJob
from mindfed.cli.exit_codes import CONFIG_ERROR, SERVER_CACHE_UNREACHABLE
from mindfed.errors import CacheError, ConfigError, ModelFormatError
from mindfed.model.formats import load_weights
from mindfed.model.lenet import init_lenet5
from mindfed.model.weights import ModelWeights

logger = logging.getLogger(__name__)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="initial weights: .ckpt, .safetensors, .npz or a torch "
                        "state_dict; default: a LeNet-5 initialised in numpy")
    parser.add_argument("--num_classes", type=int, default=62, help="classes of the default LeNet-5 (FEMNIST: 62)")
    parser.add_argument("--num_channels", type=int, default=3, help="input channels of the default LeNet-5")
    parser.add_argument("--cache_address", default="", help="Redis ip:port overriding distributed_cache.address")
    parser.add_argument("--output_dir", default=".", help="where metrics_file and failure_event_file are written")
    parser.add_argument("--no_aggr", default="", help="comma-separated weight names sent to devices but never "
                        "aggregated (MindSpore's require_aggr=False)")


def initial_model(args: argparse.Namespace) -> ModelWeights:
    """--model, else the default LeNet-5; weights named by --no_aggr are sent to devices but never aggregated."""
    model = load_weights(args.model) if args.model else init_lenet5(args.num_classes, args.num_channels)
    names = [n for n in args.no_aggr.split(",") if n]
    unknown = sorted(set(names) - set(model.names))
    if unknown:
        raise ConfigError(f"--no_aggr names weights the model does not have: {unknown}; it has {model.names}")
    return ModelWeights(dict(model.items()), require_aggr={n: n not in names for n in model.names})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mindfed-server-process", description=__doc__)
    parser.add_argument("--yaml_config", required=True)
    parser.add_argument("--http_server_address", required=True)
    parser.add_argument("--tcp_server_ip", default="127.0.0.1")
    parser.add_argument("--checkpoint_dir", default="./fl_ckpt/", help="recovery checkpoints; '' disables them")
    parser.add_argument("--heartbeat_ttl_s", type=int, default=10,
                        help="a server silent this long is taken for dead and its updates are taken over")
    parser.add_argument("--update_log", choices=("on", "off"), default="on",
                        help="log each accepted update in Redis before acknowledging it (off: a killed server loses "
                        "the updates since its last checkpoint, at most about a second's)")
    parser.add_argument("--on_stop", choices=ON_STOP_CHOICES, default="fail_iteration",
                        help="a server stopped while holding updates of the running iteration fails it (MindSpore's "
                        "behaviour) or hands them over to its peers, which finish the iteration")
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    try:
        job = FLServerJob(args.yaml_config, args.http_server_address, args.tcp_server_ip,
                          args.checkpoint_dir or "./fl_ckpt/", cache_address=args.cache_address,
                          output_dir=args.output_dir, heartbeat_ttl_s=args.heartbeat_ttl_s,
                          update_log=args.update_log == "on", recovery_checkpoints=bool(args.checkpoint_dir),
                          on_stop=args.on_stop)
        job.run(feature_map=initial_model(args))  # the one way a server starts (FLServerJob)
    except (ConfigError, ModelFormatError, ValueError, TypeError) as exc:  # the job API's parameter errors too
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return SERVER_CACHE_UNREACHABLE
    return 0


if __name__ == "__main__":
    sys.exit(main())
