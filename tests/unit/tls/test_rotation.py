"""TlsWatcher: which targets a changed file reloads, SIGHUP's forced reload, and a refused replacement."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from mindfed.errors import ConfigError
from mindfed.tls.rotation import TlsTarget, TlsWatcher


def touch(path: Path, text: str) -> None:
    staged = path.with_name(path.name + ".new")
    staged.write_text(text)
    staged.replace(path)  # a new inode, as an operator's `mv` gives


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {name: tmp_path / f"{name}.pem" for name in ("server", "client", "ca", "crl")}
    for path in out.values():
        path.write_text("v1")
    return out


def recording(name: str, paths: list[Path], calls: list[str], fail: bool = False) -> TlsTarget:
    def reload() -> str:
        calls.append(name)
        if fail:
            raise ConfigError(f"{paths[0]}: PKCS12_parse failed.")
        return f"{name} material"

    return TlsTarget(name, tuple(str(p) for p in paths), reload)


def test_a_changed_file_reloads_only_the_targets_that_read_it(files: dict[str, Path]) -> None:
    calls: list[str] = []
    watcher = TlsWatcher([recording("HTTPS", [files["server"], files["ca"]], calls),
                          recording("node transport", list(files.values()), calls)])
    assert watcher.check() == []
    touch(files["crl"], "v2")
    assert watcher.check() == ["node transport"]
    touch(files["server"], "v2")
    assert watcher.check() == ["HTTPS", "node transport"]
    assert watcher.check() == []  # nothing changed since
    assert watcher.reloads == 3


def test_a_missing_file_reloads_nothing_until_it_is_back(files: dict[str, Path]) -> None:
    calls: list[str] = []
    watcher = TlsWatcher([recording("node transport", list(files.values()), calls)])
    files["client"].unlink()
    assert watcher.check() == []
    files["client"].write_text("v2")
    assert watcher.check() == ["node transport"]


def test_sighup_reloads_every_target_and_empty_paths_are_ignored(files: dict[str, Path],
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    node = TlsTarget("node transport", (str(files["server"]), ""), lambda: calls.append("node") or "n")
    watcher = TlsWatcher([recording("HTTPS", [files["server"]], calls), node])
    assert watcher.files == [str(files["server"])]
    with caplog.at_level(logging.INFO):
        watcher.request_reload()
    assert calls == ["HTTPS", "node"]
    assert "reloaded HTTPS (SIGHUP)" in caplog.text


def test_a_replacement_that_fails_is_logged_and_tried_again_when_it_changes(files: dict[str, Path],
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    watcher = TlsWatcher([recording("HTTPS", [files["server"]], calls, fail=True)])
    touch(files["server"], "half")
    with caplog.at_level(logging.WARNING):
        assert watcher.check() == []
    assert "HTTPS not reloaded (changed: " in caplog.text
    assert "keeping the current material: " in caplog.text
    assert "PKCS12_parse failed." in caplog.text
    assert watcher.check() == []  # not retried until the file changes again
    touch(files["server"], "whole")
    watcher.check()
    assert calls == ["HTTPS", "HTTPS"]
    assert watcher.failures == 2


async def test_the_watch_loop_picks_a_change_up_and_stops(files: dict[str, Path]) -> None:
    calls: list[str] = []
    watcher = TlsWatcher([recording("node transport", [files["ca"]], calls)], poll_s=0.01)
    watcher.start()
    try:
        touch(files["ca"], "bundle")
        async with asyncio.timeout(5):
            while not calls:
                await asyncio.sleep(0.01)
    finally:
        await watcher.stop()
    assert calls == ["node transport"]
