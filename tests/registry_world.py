"""A registry world for the promotion and registration tests: tiny data, a trained (good)
model and a random (bad) one, each already evaluated; helpers to register either."""

import shutil

import torch

from gbmseg import stages, tracking
from gbmseg.engine import checkpoint
from gbmseg.model.unet import build
from gbmseg.steps import evaluate, register
from tests.conftest import prepared, tiny


def make_world(tmp_path_factory):
    """Tiny data, a trained model and a random (bad) one, each already evaluated."""
    root = tmp_path_factory.mktemp("promo")
    p = prepared(tiny(root, "train.epochs=6", "train.lr=0.01", "synth.target_test_images=5"))
    stages.train(p, "target")  # fine-tuning's budget: 2 epochs; good enough to beat random
    good = root / "good"
    shutil.copytree(p.train_params("target").out, good / "model")
    bad = root / "bad" / "model"
    bad.mkdir(parents=True)
    torch.manual_seed(1)
    checkpoint.save(bad / "model.pt", checkpoint.model_state(build(p.train.model.model_dump())))
    for name in ("good", "bad"):
        evaluate.run(
            eval_params(root, p, name), root / name / "model", *target_of(p), thickness=p.measure
        )
    return root, p


def target_of(p):
    sp = p.paths(p.finetune.target)
    return sp.validated, sp.packed


def eval_params(root, p, name):
    return p.evaluate.model_copy(
        update={"out": str(root / name / "eval"), "metrics": str(root / name / "eval.json")}
    )


def register_model(root, p, name, group="g", lock=""):
    rp = p.register_.model_copy(
        update={"out": str(root / name / "reg"), "bootstrap": 500, "lock": lock}
    )
    with tracking.stage_run(p.tracking, "register", group) as run:
        return register.run(
            rp,
            p.tracking,
            eval_params(root, p, name),
            target_of(p)[0],
            run_log=run,
            model_dir=root / name / "model",
            tags={"who": name},
            thickness=p.measure,
        )
