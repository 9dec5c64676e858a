"""The layer contract (pyproject's [tool.importlinter], docs/architecture.md) is real and kept.

* ``lint-imports`` passes on the checkout;
* the same check fails once an upward import is injected (into a copy of the
  packages, so the checkout is never touched), so the contract can fail;
* no import circle anywhere in metarl, envs and curricula.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("metarl", "envs", "curricula")
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _copy_tree(dest: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is a dev dependency (pip install -e '.[dev]')")


def test_layer_contract_holds_on_the_checkout(tmp_path):
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "where, upward, reported",
    [
        ("metarl/agents/_injected.py", "import metarl.jobs.registry\n", "metarl.agents._injected -> metarl.jobs"),
        ("metarl/meta/_injected.py", "from metarl.cli import train\n", "metarl.meta._injected -> metarl.cli"),
        ("metarl/stats.py", "import metarl.meta.es  # injected\n", "metarl.stats -> metarl.meta.es"),
        ("envs/_injected.py", "import metarl.agents.policy\n", "envs._injected -> metarl.agents.policy"),
    ],
)
def test_an_injected_upward_import_breaks_the_contract(tmp_path, where, upward, reported):
    tree = _copy_tree(tmp_path)
    target = tree / where
    target.write_text((target.read_text() if target.exists() else "") + upward)
    result = _lint(tree)
    assert result.returncode != 0, result.stdout[-3000:]
    assert reported in result.stdout, result.stdout[-3000:]


def test_no_import_circles():
    graph_tool = runpy.run_path(str(ROOT / "scripts" / "import_graph.py"))
    circles = graph_tool["cycles"](graph_tool["collect"]())
    assert circles == [], f"import circles: {circles}"
