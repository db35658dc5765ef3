"""Helpers shared by the benchmarks: output folder, JSON + Markdown table, shared data."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from gbmseg.engine.amp import cpu_bf16_pays, cpu_has_amx, cpu_info

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GBMSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))


def model_arguments(ap, base: int, tile: int = 256) -> None:
    """The U-Net size and training options the quality benchmarks share."""
    ap.add_argument("--base", type=int, default=base, help="U-Net base width")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--tile", type=int, default=tile)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def machine() -> dict:
    model, flags = cpu_info()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": model,
        "avx512_bf16": "avx512_bf16" in flags,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpu_amx": cpu_has_amx(),
        "cpu_bf16_pays": cpu_bf16_pays(),  # amp: auto's choice on this CPU (measured once)
    }


def table(rows: list[dict], cols: list[str]) -> str:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    body = "".join("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |\n" for r in rows)
    return head + body


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
    return str(v)


def write(out: Path, name: str, result: dict, markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown)
    print(markdown)
    print(f"wrote {out / (name + '.json')} and {out / (name + '.md')}")
