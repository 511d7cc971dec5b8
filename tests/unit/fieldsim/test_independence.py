"""The simulator imports nothing from eval_runner: the two sides share only the spec files in contracts/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

FIELDSIM = Path(__file__).resolve().parents[3] / "demo" / "fieldsim" / "fieldsim"


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_fieldsim_module_imports_eval_runner() -> None:
    modules = sorted(FIELDSIM.glob("*.py"))
    assert len(modules) > 5
    offenders = {
        path.name: sorted(n for n in _imported(path) if n == "eval_runner" or n.startswith("eval_runner."))
        for path in modules
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_ast_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from eval_runner.contracts import shard_of\n    import eval_runner\n")
    assert _imported(module) == {"eval_runner.contracts", "eval_runner"}


def test_every_fieldsim_module_imports_with_eval_runner_missing() -> None:
    # Catches what the AST cannot: an import built at runtime, or a dependency that pulls eval_runner in.
    names = [f"fieldsim.{path.stem}" for path in sorted(FIELDSIM.glob("*.py")) if path.stem != "__init__"]
    code = "import importlib, sys\nsys.modules['eval_runner'] = None\n" + "".join(
        f"importlib.import_module({name!r})\n" for name in names
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
