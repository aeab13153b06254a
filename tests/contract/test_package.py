"""densenet-contract stays what both images can install from this repository: pure Python for
3.9, standard library only, and the one thing the operator shares with the trainer."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import densenet_contract

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "contract"
PACKAGE = Path(densenet_contract.__file__).parent


def _imports(path: Path) -> set[str]:
    """Top-level module names a file imports (relative imports excluded)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _project(name: str) -> dict:
    return tomllib.loads((REPO / name / "pyproject.toml").read_text())["project"]


def test_the_package_is_installed_from_this_checkout() -> None:
    assert PACKAGE == CONTRACT / "src" / "densenet_contract"


def test_contract_is_pure_python_for_3_9_without_dependencies() -> None:
    project = _project("contract")
    assert (project["name"], project["version"]) == ("densenet-contract", "0.1.0")
    assert project["requires-python"] == ">=3.9"
    assert project["dependencies"] == []
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 1
    for module in modules:
        imported = _imports(module) - {"__future__", "densenet_contract"}
        third_party = {name for name in imported if name not in sys.stdlib_module_names}
        assert not third_party, f"{module.name} imports {third_party}: the contract is stdlib-only"
        tree = ast.parse(module.read_text())
        if module.name != "__init__.py":
            assert "annotations" in {
                alias.name
                for node in tree.body
                if isinstance(node, ast.ImportFrom) and node.module == "__future__"
                for alias in node.names
            }, f"{module.name}: `from __future__ import annotations` (the trainer runs on 3.9)"


def test_operator_and_trainer_depend_on_the_contract_not_on_each_other() -> None:
    operator = _project("operator")["dependencies"]
    trainer = _project("trainer")["dependencies"]
    assert "densenet-contract==0.1.0" in operator
    assert "densenet-contract==0.1.0" in trainer
    assert not [d for d in operator if d.startswith("densenet-trainer")]


def test_no_operator_module_imports_the_trainer() -> None:
    sources = sorted((REPO / "operator" / "src").rglob("*.py"))
    assert sources
    for source in sources:
        assert "densenet_trainer" not in _imports(source), source


def test_the_operator_runs_without_the_trainer_package() -> None:
    """Every operator module imported: densenet_trainer never gets loaded."""
    program = (
        "import pkgutil, sys, densenet_operator\n"
        "for m in pkgutil.walk_packages(densenet_operator.__path__, 'densenet_operator.'):\n"
        "    __import__(m.name)\n"
        "print(sorted(n for n in sys.modules if n.startswith('densenet_trainer')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
