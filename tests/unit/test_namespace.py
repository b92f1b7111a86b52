"""The public namespace is small, literal and pinned."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import carbonsim

EXPECTED_ALL = [
    "Result",
    "Scenario",
    "Simulation",
    "SweepResult",
    "__version__",
    "agents",
    "calibration",
    "clearing",
    "engine",
    "list_scenarios",
    "load_scenario",
    "market",
    "scenario",
    "simulate",
    "sweep",
    "with_overrides",
]


def test_all_is_pinned() -> None:
    assert carbonsim.__all__ == EXPECTED_ALL


def test_all_is_a_literal_list() -> None:
    source = Path(carbonsim.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    assigned = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    assert len(assigned) == 1
    assert isinstance(assigned[0], ast.List)
    assert all(isinstance(e, ast.Constant) for e in assigned[0].elts)


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(carbonsim, name) is not None


def test_version_comes_from_metadata() -> None:
    from importlib.metadata import version

    assert carbonsim.__version__ == version("carbonsim")


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        carbonsim.no_such_thing


def test_py_typed_is_shipped() -> None:
    assert (Path(carbonsim.__file__).parent / "py.typed").is_file()


def test_import_has_no_side_effects() -> None:
    """Importing carbonsim loads no heavy dependency and configures no logging."""
    code = (
        "import logging, sys; import carbonsim; "
        "assert not logging.getLogger().handlers, 'root logger configured'; "
        "heavy = [m for m in ('pandas', 'scipy', 'simpy', 'matplotlib') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_submodules_import_cleanly() -> None:
    for mod in (
        "carbonsim._validation",
        "carbonsim._registry",
        "carbonsim._random",
        "carbonsim.cli",
    ):
        importlib.import_module(mod)
