"""Entry point of one server process: `python -m mindfed.server.process --yaml_config ... --http_server_address ...`.

The launcher (`mindfed server`, run_server.py) starts one of these per port; it can also be run by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from mindfed.cli.exit_codes import CONFIG_ERROR, SERVER_CACHE_UNREACHABLE
from mindfed.cli.logs import configure_logging
from mindfed.config import FLConfig, load
from mindfed.errors import CacheError, ConfigError, ModelFormatError
from mindfed.model.formats import load_weights
from mindfed.model.lenet import init_lenet5
from mindfed.model.weights import ModelWeights
from mindfed.runtime.until_signalled import run_until_signalled
from mindfed.server.node import ServerNode, ServerOptions

logger = logging.getLogger(__name__)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="initial weights: .ckpt, .safetensors, .npz or a torch "
                        "state_dict; default: a LeNet-5 initialised in numpy")
    parser.add_argument("--num_classes", type=int, default=62, help="classes of the default LeNet-5 (FEMNIST: 62)")
    parser.add_argument("--num_channels", type=int, default=3, help="input channels of the default LeNet-5")
    parser.add_argument("--cache_address", default="", help="Redis ip:port overriding distributed_cache.address")
    parser.add_argument("--output_dir", default=".", help="where metrics_file and failure_event_file are written")


def initial_model(args: argparse.Namespace) -> ModelWeights:
    if args.model:
        return load_weights(args.model)
    return init_lenet5(args.num_classes, args.num_channels)


def load_config(args: argparse.Namespace) -> FLConfig:
    overrides = {"distributed_cache.address": args.cache_address} if args.cache_address else None
    return load(args.yaml_config, overrides)


async def serve(config: FLConfig, model: ModelWeights, options: ServerOptions) -> None:
    """Run one server until SIGINT/SIGTERM, then leave the cluster cleanly."""
    await run_until_signalled(ServerNode(config, model, options))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mindfed-server-process", description=__doc__)
    parser.add_argument("--yaml_config", required=True)
    parser.add_argument("--http_server_address", required=True)
    parser.add_argument("--tcp_server_ip", default="127.0.0.1")
    parser.add_argument("--checkpoint_dir", default="./fl_ckpt/")
    parser.add_argument("--heartbeat_ttl_s", type=int, default=10,
                        help="a server silent this long is taken for dead and its updates are taken over")
    parser.add_argument("--update_log", choices=("on", "off"), default="on",
                        help="log each accepted update in Redis before acknowledging it (off: a killed server loses "
                        "the updates since its last checkpoint, at most about a second's)")
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging()
    try:
        config = load_config(args)
        if config.distributed_cache.is_embedded:
            raise ConfigError(f"{args.yaml_config}: distributed_cache.address is empty; a single server process "
                              "needs a Redis address (the `mindfed server` launcher starts an embedded one)")
        options = ServerOptions(http_server_address=args.http_server_address, tcp_server_ip=args.tcp_server_ip,
                                checkpoint_dir=args.checkpoint_dir or None, output_dir=Path(args.output_dir),
                                heartbeat_ttl_s=args.heartbeat_ttl_s, update_log=args.update_log == "on")
        asyncio.run(serve(config, initial_model(args), options))
    except (ConfigError, ModelFormatError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return CONFIG_ERROR
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return SERVER_CACHE_UNREACHABLE
    return 0


if __name__ == "__main__":
    sys.exit(main())
