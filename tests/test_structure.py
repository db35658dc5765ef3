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


TOPS = {"gbmseg": SRC, "benchmarks": ROOT}  # package -> the folder it is imported from


def modules(top: str = "gbmseg") -> dict[str, Path]:
    found = {}
    for f in (TOPS[top] / top).rglob("*.py"):
        name = ".".join(f.relative_to(TOPS[top]).with_suffix("").parts).removesuffix(".__init__")
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


def graph(top: str = "gbmseg") -> dict[str, set[str]]:
    mods = modules(top)
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


@pytest.mark.parametrize("top", sorted(TOPS))
def test_no_import_cycles(top):
    edges = graph(top)
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


TRAIN_KEYS_NOT_LISTED = {  # stage -> train.* keys that change none of its outputs
    "train": {"sets"},  # which sets are trained (DVC's foreach) is not how
    "finetune": {"sets", "baseline_epochs"},  # the baseline's budget is not fine-tuning's
}


def train_keys_missing(dvc_yaml: Path) -> dict[str, set[str]]:
    """Per stage that trains: the train.* keys that change its model but its params omit."""
    from gbmseg.config.sections import TrainParams

    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    missing = {}
    for stage, leave_out in TRAIN_KEYS_NOT_LISTED.items():
        listed = {str(k) for k in stages[stage].get("do", stages[stage])["params"]}
        if "train" in listed:
            continue  # the whole section
        need = set(TrainParams.model_fields) - leave_out
        gaps = {k for k in need if f"train.{k}" not in listed}
        if gaps:
            missing[stage] = gaps
    return missing


def test_training_stages_list_every_train_key_that_changes_their_model(tmp_path):
    """A new train.* key re-runs training only if the stage lists it; the check can fail."""
    assert train_keys_missing(ROOT / "dvc.yaml") == {}
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    spec["stages"]["finetune"]["params"].remove("train.lr")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(spec))
    assert train_keys_missing(tmp_path / "dvc.yaml") == {"finetune": {"lr"}}


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


PRODUCT_INTERNALS = {  # what a study must reach through a step, never call itself
    ("freezing", "apply"): "the finetune step",
    ("auto", "decide"): "the finetune step",
    ("lifecycle", "fit"): "the train or finetune step",
    ("np", "save"): "the pack step (benchmarks.folders.pack)",
    ("numpy", "save"): "the pack step (benchmarks.folders.pack)",
}
ANY_RECEIVER = {"freeze": "the finetune step", "reset_head": "the finetune or train step"}


def trainer_private_methods() -> set[str]:
    tree = ast.parse((SRC / "gbmseg" / "engine" / "trainer.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
    return {
        f.name
        for f in cls.body
        if isinstance(f, ast.FunctionDef) and f.name.startswith("_") and not f.name.endswith("__")
    }


def hand_made(source: str, private: set[str]) -> list[str]:
    """Lines of ``source`` (a study) that rebuild the product instead of calling it."""
    found = []
    tree = ast.parse(source)
    for n in ast.walk(tree):
        lifecycle = isinstance(n, ast.ImportFrom) and n.module == "gbmseg.engine.lifecycle"
        if lifecycle and any(a.name == "fit" for a in n.names):
            found.append(f"{n.lineno}: imports lifecycle.fit: use the train or finetune step")
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)):
            continue
        attr, recv = n.func.attr, n.func.value
        name = recv.id if isinstance(recv, ast.Name) else ""
        if (name, attr) in PRODUCT_INTERNALS:
            found.append(f"{n.lineno}: {name}.{attr}: use {PRODUCT_INTERNALS[(name, attr)]}")
        elif attr in ANY_RECEIVER:
            found.append(f"{n.lineno}: .{attr}(): use {ANY_RECEIVER[attr]}")
        elif attr in private and name != "self":
            found.append(f"{n.lineno}: Trainer.{attr}: use a public Trainer method")
        elif attr in ("write_text", "write_bytes") and "manifest.json" in ast.unparse(recv):
            found.append(f"{n.lineno}: writes a manifest: use the pack step")
    return found


def test_studies_call_the_product():
    """Benchmarks measure what users get: no hand-made fine-tuning, packing or training, and
    nothing outside the trainer calls its private methods."""
    private = trainer_private_methods()
    assert "_step" in private
    files = [*(ROOT / "benchmarks").glob("*.py"), *(SRC / "gbmseg").rglob("*.py")]
    bad = {
        str(f.relative_to(ROOT)): lines
        for f in files
        if f.name != "trainer.py" or f.parent.name != "engine"
        for lines in [hand_made(f.read_text(), private)]
        if lines and (f.parent.name == "benchmarks" or any("Trainer." in x for x in lines))
    }
    assert not bad, bad


def test_hand_made_copies_are_caught():
    study = """
from gbmseg.engine.lifecycle import fit
import numpy as np
freezing.apply(model, "decoder", 2)
d = auto.decide(model, x, 2, 100, h, p)
model.reset_head()
np.save(out / "train_images.npy", x)
(out / "manifest.json").write_text("{}")
tr._train_epoch(0, batches)
"""
    lines = hand_made(study, {"_train_epoch"})
    assert [ln.split(":")[0] for ln in lines] == ["2", "4", "5", "6", "7", "8", "9"], lines


MIRROR_EXCEPTIONS = {  # module -> why it has no test module of its own
    "__main__.py": "two lines handing over to the CLI; run by every test that runs `gbmseg`",
    "errors.py": "exception classes only",
    "config/errors.py": "exception classes only",
    "runlog.py": "a Protocol (the shape a run log has), no logic",
    "engine/seed.py": "three seeding calls; the trainer's resume test needs them equal",
    "data/plots.py": "a matplotlib figure and its PNG bytes; every plot test reads them",
    "config/sections.py": "the sections' declarations; tests/config/test_params.py loads, "
    "overrides and refuses them",
    "cli/base.py": "one command line: tests/cli/test_app.py runs every subcommand as typed",
    "cli/daily.py": "one command line: tests/cli/test_app.py runs every subcommand as typed",
    "cli/ops.py": "one command line: tests/cli/test_app.py runs every subcommand as typed",
    "cli/pipeline.py": "one command line: tests/cli/test_app.py runs every subcommand as typed",
    "cli/loop.py": "one command line: tests/cli/test_app.py runs every subcommand as typed",
    "config/loop.py": "the sections' declarations; tests/config/test_params.py loads, "
    "overrides and refuses them",
}


def test_tests_mirror_the_package():
    """Every module with logic has tests/<same folder>/test_<name>.py; the exceptions say why."""
    missing = []
    for f in sorted((SRC / "gbmseg").rglob("*.py")):
        rel = f.relative_to(SRC / "gbmseg")
        if f.name == "__init__.py" or rel.as_posix() in MIRROR_EXCEPTIONS:
            continue
        if not (ROOT / "tests" / rel.parent / f"test_{f.name}").is_file():
            missing.append(rel.as_posix())
    assert not missing, f"no test module for {missing}"
    stale = [m for m in MIRROR_EXCEPTIONS if not (SRC / "gbmseg" / m).is_file()]
    assert not stale, f"exceptions for modules that no longer exist: {stale}"


def test_test_modules_share_helpers_only_through_helper_modules():
    """A test module never imports another test module's private helpers."""
    found = []
    for f in sorted((ROOT / "tests").rglob("test_*.py")):
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[-1].startswith(
                "test_"
            ):
                found.append(f"{f.relative_to(ROOT)}: from {n.module}")
    assert not found, found
