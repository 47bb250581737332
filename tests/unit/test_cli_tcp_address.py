"""`--tcp_server_ip` / `--tcp_server_port` of a server process and of `mindfed server`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mindfed.cli import server_process
from mindfed.cli.exit_codes import CONFIG_ERROR
from mindfed.cli.server import add_launch_arguments

REPO = Path(__file__).resolve().parents[2]


def test_a_wildcard_advertised_address_exits_with_the_config_code(capsys: pytest.CaptureFixture[str]) -> None:
    rc = server_process.main(["--yaml_config", str(REPO / "yamls" / "lenet.yaml"), "--http_server_address",
                              "127.0.0.1:0", "--cache_address", "127.0.0.1:1", "--checkpoint_dir", "",
                              "--tcp_server_ip", "0.0.0.0"])
    assert rc == CONFIG_ERROR
    assert "'0.0.0.0' is a wildcard, not an address peers can reach" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["-1", "65536", "x"])
def test_a_bad_node_port_is_refused_by_the_parser(text: str) -> None:
    parser = argparse.ArgumentParser()
    server_process.add_process_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--yaml_config", "y", "--http_server_address", "127.0.0.1:1", "--tcp_server_port", text])


def test_mindfed_server_gives_its_servers_consecutive_node_ports_and_forwards_the_ip() -> None:
    parser = argparse.ArgumentParser()
    add_launch_arguments(parser)
    args = parser.parse_args(["--yaml_config", "y", "--tcp_server_ip", "10.0.0.7", "--tcp_server_port", "7000"])
    argv = server_process.forwarded_argv(args)
    assert "--tcp_server_port" not in argv  # the launcher sets it per process
    assert argv[argv.index("--tcp_server_ip") + 1] == "10.0.0.7"
    defaults = parser.parse_args(["--yaml_config", "y"])
    assert (defaults.tcp_server_ip, defaults.tcp_server_port) == ("", 0)
