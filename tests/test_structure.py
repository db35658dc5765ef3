"""The package's shape: no import cycles, steps never import steps, and every stage in
dvc.yaml lists the code it runs (so a code change can never leave a stale stage 'up to date').

Imports are read from the source with ``ast`` (imports inside functions count too):
``import a.b`` depends on ``a.b``; ``from a import b`` on ``a`` and, when it is a module, ``a.b``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

SRC = ROOT / "src"


def modules() -> dict[str, Path]:
    found = {}
    for f in (SRC / "gbmseg").rglob("*.py"):
        name = ".".join(f.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found[name] = f
    return found


def imports_of(nodes, mods: dict[str, Path], package: str) -> set[str]:
    out: set[str] = set()
    for node in nodes:
        for n in ast.walk(node):
            targets: list[str] = []
            if isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parts = package.split(".")[: len(package.split(".")) - n.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *[f"{base}.{a.name}" for a in n.names]]
            out |= {t for t in targets if t in mods}
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    edges = {}
    for name, f in mods.items():
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        edges[name] = imports_of([ast.parse(f.read_text())], mods, package) - {name}
    return edges


def closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for m in edges[todo.pop()]:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def test_no_import_cycles_inside_gbmseg():
    edges = graph()
    cycles = sorted(
        tuple(sorted((a, b))) for a in edges for b in edges[a] if a in closure({b}, edges)
    )
    assert cycles == [], f"import cycles through: {cycles}"


def test_steps_never_import_steps():
    edges = graph()
    bad = sorted(
        f"{a} -> {b}" for a in edges for b in edges[a] if ".steps." in a and ".steps." in b
    )
    assert bad == []


def stage_entry(stage: str) -> set[str]:
    """What `gbmseg <stage>` runs: the imports of ``gbmseg.stages.<stage>`` (its body and the
    module's top level)."""
    mods = modules()
    tree = ast.parse(mods["gbmseg.stages"].read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == stage)
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return imports_of([fn, *top], mods, "gbmseg")


def trivial(f: Path) -> bool:
    """A package marker: a docstring and constants, no imports (nothing that runs)."""
    return f.name == "__init__.py" and not imports_of([ast.parse(f.read_text())], modules(), "")


def uncovered(dvc_yaml: Path) -> dict[str, list[str]]:
    """Per stage of ``dvc_yaml``: the source files it runs that no dep covers."""
    edges, mods = graph(), modules()
    missing = {}
    for stage, spec in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        body = spec.get("do", spec)
        deps = [Path(d) for d in body.get("deps", []) if str(d).startswith("src/")]
        run = closure(stage_entry(stage), edges)
        files = {mods[m].relative_to(ROOT) for m in run if not trivial(mods[m])}
        files.add(mods["gbmseg.stages"].relative_to(ROOT))
        gaps = sorted(str(f) for f in files if not any(f == d or d in f.parents for d in deps))
        if gaps:
            missing[stage] = gaps
    return missing


@pytest.mark.parametrize("stage", sorted(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]))
def test_every_stage_depends_on_the_code_it_runs(stage):
    gaps = uncovered(ROOT / "dvc.yaml").get(stage, [])
    assert gaps == [], f"dvc.yaml stage {stage!r} does not depend on {gaps}"


def test_a_missing_code_dep_is_caught(tmp_path):
    """The check can fail: dvc.yaml with one dep taken out of finetune (and the dvc.yaml this
    project had before stages listed their import closure) is reported."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    spec["stages"]["finetune"]["deps"].remove("src/gbmseg/engine")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(spec))
    gaps = uncovered(tmp_path / "dvc.yaml")
    assert list(gaps) == ["finetune"]
    assert "src/gbmseg/engine/lifecycle.py" in gaps["finetune"]


def test_step_functions_take_arguments_past_the_fourth_by_keyword():
    loose = []
    for f in sorted((SRC / "gbmseg" / "steps").glob("*.py")):
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name == "run" and len(node.args.args) > 4:
                loose.append(f"{f.name}: {[a.arg for a in node.args.args[4:]]}")
    assert not loose, loose


def test_no_model_attribute_carries_learning_rates():
    """Parameter groups reach the trainer as an argument, never hung on the model (set as an
    attribute, or looked up with getattr)."""

    def hidden(n: ast.AST) -> bool:
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            return n.attr == "lr_scales"
        return (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id == "getattr"
            and any(isinstance(a, ast.Constant) and a.value == "lr_scales" for a in n.args)
        )

    found = [
        f"{f.relative_to(ROOT)}:{n.lineno}"
        for f in (SRC / "gbmseg").rglob("*.py")
        for n in ast.walk(ast.parse(f.read_text()))
        if hidden(n)
    ]
    assert not found, found
