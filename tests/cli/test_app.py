"""The command line: thin callers that turn bad input into one clear line and exit 2."""

import json

import pytest

from benchmarks.phantoms import ribbon
from gbmseg.cli.app import build_parser, main
from gbmseg.cli.base import overrides
from gbmseg.data.io import binary_to_mask, write_png
from gbmseg.data.scale import given
from tests.conftest import TINY, path_overrides, tiny


def _args(tmp_path, *extra):
    p = tiny(tmp_path)  # every path inside tmp_path
    paths = path_overrides(p)
    sets = [a for kv in [*TINY, *paths, *extra] for a in ("-S", kv)]
    return [*sets, "--no-track"]


def test_help_lists_every_step_in_pipeline_order(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    steps = ["synth", "validate", "augment", "pack", "train", "selfsup", "resolve", "finetune"]
    steps += ["evaluate"]
    at = [out.index(f"    {s} ") for s in [*steps, "register", "predict", "measure"]]
    assert at == sorted(at)


def test_flags_become_overrides_beside_dash_s():
    args = build_parser().parse_args(
        ["validate", "source", "--raw", "/data/isbi", "-S", "validate.min_images=2"]
    )
    assert overrides(args) == ["validate.min_images=2", "sets.source.raw=/data/isbi"]
    args = build_parser().parse_args(["predict", "x.png", "--tta", "--tile", "256"])
    assert overrides(args) == ["predict.tta=true", "predict.tile=256"]


def test_missing_data_folder_says_what_to_do(tmp_path, caplog):
    assert main(["validate", *_args(tmp_path)]) == 2
    assert f"{tmp_path}/data/raw/target: data folder not found" in caplog.text
    assert "gbmseg synth" in caplog.text and "dvc pull" in caplog.text
    assert not (tmp_path / "data" / "validated").exists()


def test_mask_without_image_is_named(tmp_path, caplog):
    assert main(["synth", *_args(tmp_path)]) == 0
    first = sorted((tmp_path / "data" / "raw" / "target" / "images").iterdir())[0]
    first.unlink()
    assert main(["validate", "target", *_args(tmp_path)]) == 2
    text = f"target/masks/{first.name}: expect_column_values_to_be_in_set(has_image)"
    assert text in caplog.text
    assert not (tmp_path / "data" / "validated").exists()


def test_unknown_override_key_is_rejected(tmp_path, caplog):
    assert main(["pack", *_args(tmp_path, "pack.tiel=3")]) == 2
    assert "unknown key 'pack.tiel'" in caplog.text


def test_an_unknown_set_is_named(tmp_path, caplog):
    assert main(["train", "lab", *_args(tmp_path)]) == 2
    assert "'lab' is not a set in params.yaml `sets`" in caplog.text


def test_evaluate_without_a_model(tmp_path, caplog):
    assert main(["synth", *_args(tmp_path)]) == 0
    for step in ("validate", "augment", "pack"):
        assert main([step, "target", *_args(tmp_path)]) == 0
    assert main(["evaluate", *_args(tmp_path)]) == 2
    assert "no such checkpoint" in caplog.text and "gbmseg train" in caplog.text


def test_the_loop_chains_through_the_cli(tmp_path, capsys):
    """source -> pretrain -> resolve -> finetune on the target -> evaluate beside scratch."""
    assert main(["synth", *_args(tmp_path)]) == 0
    for name in ("source", "target"):
        for step in ("validate", "augment", "pack", "train"):
            assert main([step, name, *_args(tmp_path)]) == 0, (step, name)
    for step in ("resolve", "finetune", "evaluate"):
        assert main([step, *_args(tmp_path)]) == 0, step
    metrics = json.loads((tmp_path / "metrics" / "evaluate.json").read_text())
    assert 0 <= metrics["dice"] <= 1 and 0 <= metrics["baseline_dice"] <= 1
    assert metrics["n_images"] == 3  # the target's test/ folder
    assert (tmp_path / "models" / "finetune" / "model.pt").is_file()
    resolved = json.loads((tmp_path / "models" / "pretrained" / "pretrained.json").read_text())
    assert resolved["reference"].endswith("models/train/source") and resolved["images_seen"] > 0


MISUSES = [  # (subcommand line, what the one line must say)
    (["validate", "{tmp}/some/folder"], "is not a set in params.yaml `sets`"),
    (["validate", "lab"], "'lab' is not a set"),
    (["augment", "{tmp}/some/folder"], "is not a set"),
    (["pack", "nosuchset"], "'nosuchset' is not a set"),
    (["train", "{tmp}"], "`gbmseg validate target --raw"),
    (["selfsup", "lab"], "'lab' is not named under selfsup.unlabelled"),
    (["resolve", "--pretrained", "{tmp}/no/model"], "no/model"),
    (["finetune"], "pretrained"),
    (["evaluate", "--model", "{tmp}/no/model"], "missing; run `gbmseg pack` first"),
    (["predict", "{tmp}/missing.png", "--model", "{tmp}/m"], "missing.png: no such image"),
    (["measure", "{tmp}/missing"], "missing: no such mask or folder"),
    (["suggest", "--model", "{tmp}/m", "--images", "{tmp}/none"], "none: no such unlabelled"),
    (["export", "--model", "{tmp}/m", "--sample", "{tmp}/none.png"], "none.png: no such image"),
    (["measure", "{tmp}/masks", "--biopsies", "{tmp}/none.csv"], "none.csv: cannot read"),
    (["pack", "-S", "pack.tiel=3"], "unknown key 'pack.tiel'"),
    (["validate", "--params", "{tmp}/missing.yaml"], "missing.yaml"),
]


@pytest.mark.parametrize(("line", "says"), MISUSES, ids=[" ".join(m[0][:2]) for m in MISUSES])
def test_every_mistyped_command_is_one_line_exit_2_and_writes_nothing(
    tmp_path, capfd, caplog, line, says
):
    work = tmp_path / "work"
    work.mkdir()
    write_png(tmp_path / "masks" / "a.png", binary_to_mask(ribbon(12, 100), "black"),
              given(10.0, "test"))  # fmt: skip
    before = sorted(work.rglob("*"))
    words = [w.replace("{tmp}", str(tmp_path)) for w in line]
    extra = [] if "--params" in words else _args(work)
    assert main([*words, *extra]) == 2
    err = capfd.readouterr().err + caplog.text
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0], err  # one line
    assert says in errors[0], errors[0]
    assert "Traceback" not in err
    assert sorted(work.rglob("*")) == before  # nothing written


def test_an_unchanged_resolve_loads_neither_torch_nor_mlflow(tmp_path):
    """What a no-op `dvc repro` runs: `gbmseg resolve` with nothing new to resolve."""
    import subprocess
    import sys

    from tests.models import dark_model, save

    save(dark_model(), tmp_path / "lab_model")
    args = _args(tmp_path, f"finetune.pretrained={tmp_path / 'lab_model'}")
    assert main(["resolve", *args]) == 0  # the first time: copied, checked with torch
    code = (
        "import sys\n"
        "from gbmseg.cli.app import main\n"
        f"assert main(['resolve', *{args!r}]) == 0\n"
        "assert 'torch' not in sys.modules and 'mlflow' not in sys.modules, 'imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-1500:]
    assert '"unchanged": true' in res.stdout
