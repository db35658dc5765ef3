"""finetune = train + overrides from a pretrained model; frozen parts stay bit-for-bit fixed,
BatchNorm running statistics included."""

import json

import pytest
import torch

from gbmseg.engine import checkpoint
from gbmseg.model.unet import build
from gbmseg.steps import finetune
from gbmseg.transfer import freezing
from tests.conftest import prepared, tiny


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    p = prepared(tiny(root))
    torch.manual_seed(3)
    m = build(p.train.model.model_dump())
    with torch.no_grad():  # non-trivial BN statistics, to see that they do not move
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
    (root / "pre").mkdir()
    checkpoint.save(root / "pre" / "model.pt", checkpoint.model_state(m))
    return root, p


@pytest.mark.parametrize("strategy", ["head", "decoder", "shallow", "full"])
def test_strategies_freeze_exactly_their_parts(setup, strategy):
    root, p = setup
    ft = p.finetune.model_copy(update={"strategy": strategy})
    tp = p.finetune_train_params().model_copy(
        update={
            "lr": 0.01,
            "out": str(root / strategy),
            "metrics": str(root / f"{strategy}.json"),
            "history": str(root / f"{strategy}.csv"),
            "checkpoints": str(root / f"{strategy}.ckpt"),
        }
    )
    res = finetune.run(ft, tp, root / "pre", p.paths("target").packed)
    before = checkpoint.load(root / "pre" / "model.pt")["model"]
    after = checkpoint.load(root / strategy / "model.pt")["model"]
    frozen = freezing.frozen_parts(build(p.train.model.model_dump()), strategy, ft.shallow_levels)
    for key, old in before.items():
        same = torch.equal(old, after[key])
        if any(key.startswith(f"{part}.") for part in frozen):
            assert same, f"{strategy}: frozen {key} changed"
        elif key.endswith(".weight"):
            assert not same, f"{strategy}: trainable {key} did not change"
    assert res["strategy"] == strategy and res["epochs_run"] == 2
    assert res["frozen_parameters"] > 0 or strategy == "full"
    seen = json.loads((root / strategy / "trained_on.json").read_text())
    manifest = json.loads((p.paths("target").packed / "manifest.json").read_text())["splits"]
    assert set(seen["pixels_sha256"]) == set(
        manifest["train"]["pixels_sha256"] + manifest["val"]["pixels_sha256"]
    )


def test_unknown_strategy_and_mismatched_weights(tmp_path):
    with pytest.raises(ValueError, match="unknown fine-tuning strategy"):
        freezing.frozen_parts(build({"depth": 2, "base": 4}), "everything")
    other = build({"depth": 3, "base": 4})
    state = {"model": other.state_dict(), "model_config": {"depth": 2, "base": 4}}
    checkpoint.save(tmp_path / "bad.pt", state)
    with pytest.raises(checkpoint.CheckpointError, match="do not fit"):
        checkpoint.load_model(tmp_path / "bad.pt")


def test_a_pretrained_model_at_another_scale_is_refused_naming_pack_scale():
    from gbmseg.data.io import DataError
    from gbmseg.steps.finetune import check_scale

    check_scale(20.0, 20.5, "models/train/source", "data/packed/target")  # within 5%
    check_scale(None, 20.0, "models/train/source", "data/packed/target")  # unknown: warned
    with pytest.raises(DataError, match=r"trained at 4 nm/px, .* at 20 nm/px: set pack\.scale_nm"):
        check_scale(4.0, 20.0, "models/train/source", "data/packed/target")
