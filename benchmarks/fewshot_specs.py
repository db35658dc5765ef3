"""What the few-label study runs: a cell's configuration (``Config``), the levers screened
(one change each from the baseline), and the lists of cells of each phase.  A cell spec is
``(target, k, seed, config, scored_on, label)``; ``benchmarks.fewshot`` runs one."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import ROOT

TEST_SHARE = {"vnc_membranes": 10, "cdeep3m_mito": 15}  # test images: the last N


@dataclass
class Config:
    """One training configuration: the levers, each with its default."""

    start: str = "isbi"  # scratch | isbi | ssl | isbi+ssl | multi
    strategy: str = "full"  # full | shallow | decoder | auto (fine-tuning)
    steps: int = 600
    pretrain_steps: int = 2000  # per source set (supervised) or on unlabelled images (ssl)
    lr: float = 0.001
    base: int = 16
    tile: int = 128
    foreground: float = 0.0
    pos_weight: float = 1.0
    elastic: float = 0.0
    tta: bool = False
    extra: dict = field(default_factory=dict)

    def key(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


LEVERS = {  # one change each from the baseline Config(); the screen runs those asked for
    "baseline": {},
    "scratch": {"start": "scratch"},
    "ssl": {"start": "ssl"},
    "isbi+ssl": {"start": "isbi+ssl"},
    "multi": {"start": "multi"},
    "shallow": {"strategy": "shallow"},
    "decoder": {"strategy": "decoder"},
    "foreground": {"foreground": 3.0},
    "pos_weight": {"pos_weight": 3.0},
    "elastic": {"elastic": 0.5},
    "tta": {"tta": True},
    "longer": {"steps": 1200},
    "wider": {"base": 32},
    "narrower": {"base": 8},
    "lr_low": {"lr": 0.0003},
}


def changed(base: Config, change: dict) -> Config:
    return Config(**{**base.__dict__, **change})


def screen_specs(base: Config, targets, ks, seeds, levers) -> list[tuple]:
    """Each lever alone on the development images."""
    out = []
    for target in targets:
        for name in levers:
            cfg = changed(base, LEVERS[name])
            out += [(target, k, s, cfg, "dev", name) for k in ks for s in seeds]
    return out


def grid_specs(base: Config, targets, ks, seeds, strategies) -> list[tuple]:
    """Strategies x k x seeds on the test images (``scratch``: no pretrained start)."""
    out = []
    for target in targets:
        for strategy in strategies:
            change = {"start": "scratch"} if strategy == "scratch" else {"strategy": strategy}
            cfg = changed(base, change)
            out += [(target, k, s, cfg, "test", strategy) for k in ks for s in seeds]
    return out


def ceiling_specs(base: Config, targets, seeds) -> list[tuple]:
    """Full supervision: every pool candidate labelled (k = 0), from scratch, on the test images."""
    cfg = changed(base, {"start": "scratch"})
    return [(target, 0, s, cfg, "test", "ceiling") for target in targets for s in seeds]


def specs(args) -> list[tuple]:
    base = base_config(args)
    if args.phase == "screen":
        return screen_specs(base, args.target, args.k, args.seeds, args.levers)
    if args.phase == "grid":
        return grid_specs(base, args.target, args.k, args.seeds, args.strategies)
    return ceiling_specs(base, args.target, args.seeds)


def add_io_arguments(ap: argparse.ArgumentParser, out_name: str) -> None:
    """--config (Config fields for every cell), --work (cache), --out (the study's JSON)."""
    ap.add_argument("--config", default="", help="JSON of Config fields for every cell")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out" / "fewshot-work")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / out_name)


def base_config(args) -> Config:
    return Config(**json.loads(args.config)) if args.config else Config()
