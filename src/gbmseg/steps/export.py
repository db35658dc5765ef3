"""export: a model (folder or registered version) -> a BioImage Model Zoo package and ONNX.

Writes into ``export.out``, all or nothing: ``NAME/`` (the package: rdf.yaml, the
architecture source, state-dict / TorchScript / ONNX weights, test tensors, a README with the
training data, metrics and licence), ``NAME.zip`` (the same, as bioimage.io tools take it),
``NAME.onnx`` (probabilities directly, for ONNX Runtime alone) and ``export.json`` (what was
checked). Before anything is kept, ONNX Runtime must reproduce PyTorch's probabilities on the
test input within ``export.tolerance`` and, with ``export.check``, bioimageio.core's own
model test must pass. From the registry, the zip and the ONNX file are logged to the
version's source run and the version is tagged with where they are.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import yaml

from gbmseg import bioimage
from gbmseg.config import ExportParams, is_registry_ref
from gbmseg.data import resample
from gbmseg.data.atomic import atomic_dir, sha256_file, write_json
from gbmseg.data.io import DataError, pixel_size_of, read_raw, to_uint8, write_png
from gbmseg.engine.checkpoint import load_model
from gbmseg.errors import ExportError
from gbmseg.inference import model_pixel_size, threshold_for

log = logging.getLogger(__name__)


def test_input(model, sample: Path, tile: int) -> np.ndarray:
    """``sample`` at the model's pixel size, its central ``tile`` x ``tile`` (reflected where
    smaller), as a (1, 1, tile, tile) float32 array in [0, 1]."""
    img = to_uint8(read_raw(sample))
    size, model_nm = pixel_size_of(sample), model_pixel_size(model)
    if size is not None and resample.needed(size.nm, model_nm):
        img = resample.image(img, resample.shape_at(img.shape, size.nm, model_nm))
    pad = [(max(0, tile - n) // 2, max(0, tile - n) - max(0, tile - n) // 2) for n in img.shape]
    img = np.pad(img, pad, mode="reflect")
    y0, x0 = (img.shape[0] - tile) // 2, (img.shape[1] - tile) // 2
    crop = img[y0 : y0 + tile, x0 : x0 + tile]
    return (crop.astype(np.float32) / 255)[None, None]


@contextlib.contextmanager
def _model_folder(ref: str) -> Iterator[tuple[Path, dict | None]]:
    """(folder with model.pt, the registry version's record or None)."""
    if not is_registry_ref(ref):
        folder = Path(ref)
        yield (folder.parent if folder.suffix == ".pt" else folder), None
        return
    from gbmseg import tracking

    record = tracking.version_record(ref)
    with tracking.downloaded(ref) as folder:
        yield folder, record


def _metrics(folder: Path, record: dict | None, metrics: Path | None) -> dict:
    """Test metrics of exactly these weights: the version's ``test_*`` tags, or an evaluate
    file whose ``model_sha256`` is this model.pt's (another model's figures never get in)."""
    if record is not None:
        return {k[5:]: v for k, v in record["tags"].items() if k.startswith("test_")}
    if metrics is None or not metrics.is_file():
        return {}
    scores = json.loads(metrics.read_text())
    if scores.get("model_sha256") != sha256_file(folder / "model.pt"):
        log.warning("export: %s scored other weights; the README carries no metrics", metrics)
        return {}
    return {k: v for k, v in scores.items() if k != "model_sha256"}


def _readme(p: ExportParams, model, folder: Path, metrics: dict, label: str) -> str:
    nm, threshold = model_pixel_size(model), threshold_for(model, "model")
    trained = folder / "trained_on.json"
    seen = json.loads(trained.read_text()) if trained.is_file() else {}
    scale = f"{nm:g} nm per pixel" if nm else "an unrecorded pixel size (no scale in the axes)"
    lines = [
        f"# {p.name}",
        "",
        f"A U-Net (Ronneberger et al. 2015) segmenting the {label} in transmission-EM images,",
        f"exported by gbmseg. Input: one-channel image at {scale}, any height and width divisible",
        f"by {model.multiple}, scaled to [0, 1]. Output: the probability of {label} per pixel.",
        f"Binarise at **{threshold:g}** "
        + (
            "(chosen with the model on validation data)."
            if model.threshold()
            else "(the default: no threshold was chosen with this model)."
        ),
        "",
        "## Training data",
        "",
        f"{seen.get('images', 'an unrecorded number of')} images"
        + (f" at {seen['pixel_size_nm']:g} nm/px" if seen.get("pixel_size_nm") else "")
        + f"; architecture {json.dumps(model.cfg.to_dict())}.",
        "",
        "## Validation",
        "",
    ]
    if metrics:
        lines += ["Test images never used for training or any choice:", "", "| metric | value |",
                  "|---|---|", *(f"| {k} | {v} |" for k, v in sorted(metrics.items()))]  # fmt: skip
    else:
        lines.append("No test metrics were recorded for these weights.")
    lines += ["", "## Licence", "", f"{p.license}.", ""]
    return "\n".join(lines)


def _sample_files(tmp: Path, x: np.ndarray, y: np.ndarray) -> None:
    import tifffile

    np.save(tmp / "test_input.npy", x)
    np.save(tmp / "test_output.npy", y)
    tifffile.imwrite(tmp / "sample_input.tif", x[0, 0])
    tifffile.imwrite(tmp / "sample_output.tif", y[0, 0])
    cover = np.concatenate([x[0, 0], y[0, 0]], axis=1)
    write_png(tmp / "cover.png", np.rint(cover * 255).astype(np.uint8))


def build_package(p: ExportParams, model, pkg: Path, x: np.ndarray, **about) -> dict:
    """Write the package's files into ``pkg`` and its rdf.yaml; return the rdf."""
    y = bioimage.probabilities(model, x)
    _sample_files(pkg, x, y)
    torch.save(model.state_dict(), pkg / "weights.pt")
    (pkg / bioimage.ARCHITECTURE.name).write_bytes(bioimage.ARCHITECTURE.read_bytes())
    bioimage.write_torchscript(model, x, pkg / "weights.torchscript")
    bioimage.write_onnx(model, x, pkg / "weights.onnx", p.opset)
    (pkg / "README.md").write_text(_readme(p, model, about["folder"], about["metrics"],
                                           about["label"]))  # fmt: skip
    nm = model_pixel_size(model)
    rdf = {
        "type": "model",
        "format_version": bioimage.FORMAT_VERSION,
        "name": p.name,
        "description": p.description,
        "authors": [{"name": a} for a in p.authors],
        "cite": [
            {
                "text": "Ronneberger, Fischer, Brox. U-Net (MICCAI 2015)",
                "doi": "10.1007/978-3-319-24574-4_28",
            }
        ],
        "license": p.license,
        "tags": ["electron-microscopy", "kidney", "segmentation", "unet", "2d"],
        "documentation": bioimage.file_entry(pkg, "README.md"),
        "covers": [bioimage.file_entry(pkg, "cover.png")],
        **bioimage.tensors(pkg, multiple=model.multiple, nm=nm, label=about["label"]),
        "weights": bioimage.weights(pkg, model.cfg.to_dict(), opset=p.opset),
        "config": {"gbmseg": {"threshold": threshold_for(model, "model"), "pixel_size_nm": nm}},
    }
    (pkg / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))
    return rdf


def _agree(p: ExportParams, got: np.ndarray, want: np.ndarray, what: str) -> float:
    diff = float(np.abs(got - want).max())
    if diff > p.tolerance:
        raise ExportError(
            f"{what}: ONNX Runtime differs from PyTorch by {diff:.2e} (max abs on probabilities, "
            f"export.tolerance {p.tolerance:g}); nothing was written. Try another export.opset"
        )
    return diff


def _checks(p: ExportParams, model, pkg: Path, plain: Path, x: np.ndarray) -> dict:
    """ONNX Runtime against PyTorch on the test input (both ONNX files), then, with
    ``p.check``, bioimageio.core's own test of the package; ExportError on any failure."""
    want = bioimage.probabilities(model, x)
    plain_out = bioimage.onnx_probabilities(plain, x, sigmoid=False)
    pkg_out = bioimage.onnx_probabilities(pkg / "weights.onnx", x, sigmoid=True)
    found = {
        "onnx_max_abs_diff": _agree(p, plain_out, want, plain.name),
        "package_onnx_max_abs_diff": _agree(p, pkg_out, want, "weights.onnx"),
        "bioimageio_test": bioimage.check(pkg / "rdf.yaml") if p.check else None,
    }
    test = found["bioimageio_test"]
    if test and test["status"] != "passed":
        raise ExportError(
            f"bioimageio test {test['status']}: {'; '.join(test['failures'][:3])}; nothing "
            "was written"
        )
    return found


def run(
    p: ExportParams, model_ref: str, out: str | Path, *, sample: str | Path,
    metrics: str | Path | None = None, label: str = "gbm",
) -> dict:  # fmt: skip
    """Export ``model_ref``; ``sample`` is the image whose central tile is the test input."""
    if not Path(sample).is_file():
        raise DataError(f"{sample}: no such image for the test input; give one (--sample)")
    with _model_folder(model_ref) as (folder, record), atomic_dir(out) as tmp:
        model = load_model(folder).cpu().eval()
        if p.tile % model.multiple:
            raise DataError(f"export.tile {p.tile} must be a multiple of {model.multiple}")
        x = test_input(model, Path(sample), p.tile)
        pkg = tmp / p.name
        pkg.mkdir()
        found = _metrics(folder, record, Path(metrics) if metrics else None)
        build_package(p, model, pkg, x, folder=folder, metrics=found, label=label)
        plain = bioimage.write_onnx(bioimage.Probabilities(model), x, tmp / f"{p.name}.onnx",
                                    p.opset)  # fmt: skip
        result = {
            "model": str(model_ref),
            "package": str(Path(out) / p.name / "rdf.yaml"),
            "zip": str(Path(out) / f"{p.name}.zip"),
            "onnx": str(Path(out) / f"{p.name}.onnx"),
            "test_input": str(sample),
            **_checks(p, model, pkg, plain, x),
        }
        bioimage.zip_folder(pkg, tmp / f"{p.name}.zip")
        if record is not None:
            from gbmseg import tracking

            files = [tmp / f"{p.name}.zip", tmp / f"{p.name}.onnx"]
            result["logged"] = tracking.log_package(record, files)
        write_json(tmp / "export.json", result)
    log.info("export: %s -> %s (ONNX max abs diff %.1e)", model_ref, out,
             result["onnx_max_abs_diff"])  # fmt: skip
    return result
