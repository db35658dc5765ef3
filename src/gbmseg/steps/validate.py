"""validate: check an image/mask folder with a Great Expectations suite, then normalise it.

Output (only when every expectation holds): ``images/`` (8-bit), ``masks/`` (0/1, 1 =
structure), ``table.csv``, ``manifest.json`` (sha256 of every file), ``gx_result.json``,
the Great Expectations Data Docs (``data_docs/index.html``) and ``contact_sheet.png``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd

from gbmseg.config import ValidateParams
from gbmseg.data import scale
from gbmseg.data.atomic import atomic_dir, meta, sha256_file, write_json
from gbmseg.data.io import DataError, read_image, write_png
from gbmseg.data.preview import grid, overlay, thumbnail
from gbmseg.data.scale import PLAUSIBLE_NM
from gbmseg.data.table import as_records, build_table, load_structure
from gbmseg.runlog import RunLog, numbers

log = logging.getLogger(__name__)


class ValidationFailed(DataError):
    """One or more expectations failed; ``problems`` holds one line per bad file."""

    def __init__(self, root: Path, problems: list[str]):
        self.problems = problems
        body = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{root}: {len(problems)} problem(s) found, nothing written:\n{body}")


def _expectations(p: ValidateParams) -> list:
    import great_expectations as gx

    e = gx.expectations
    lo, hi = p.positive_fraction
    calibrated = [e.ExpectColumnValuesToNotBeNull(column="pixel_size_nm")]
    return (calibrated if p.require_pixel_size else []) + [
        e.ExpectTableRowCountToBeBetween(min_value=p.min_images),
        e.ExpectColumnValuesToBeInSet(column="has_image", value_set=[True]),
        e.ExpectColumnValuesToBeInSet(column="has_mask", value_set=[True]),
        e.ExpectColumnValuesToBeInSet(column="decodes", value_set=[True]),
        e.ExpectColumnValuesToBeInSet(column="size_match", value_set=[True]),
        e.ExpectColumnValuesToBeInSet(column="mask_binary", value_set=[True]),
        e.ExpectColumnValuesToBeBetween(column="positive_fraction", min_value=lo, max_value=hi),
        e.ExpectColumnValuesToBeUnique(column="sha256"),
        e.ExpectColumnValuesToBeUnique(column="name"),
        e.ExpectColumnValuesToBeBetween(
            column="pixel_size_nm", min_value=PLAUSIBLE_NM[0], max_value=PLAUSIBLE_NM[1]
        ),
    ]


def check(df: pd.DataFrame, p: ValidateParams) -> tuple[bool, list[str], dict, Path]:
    """Run the suite on the pair table.

    Returns (success, one problem line per bad file, GX result dict, Data Docs folder).
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = ctx.data_sources.add_pandas("pairs").add_dataframe_asset("table")
    suite = ctx.suites.add(gx.ExpectationSuite(name="gbmseg_pairs"))
    for exp in _expectations(p):
        suite.add_expectation(exp)
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(
            name="pairs", data=asset.add_batch_definition_whole_dataframe("all"), suite=suite
        )
    )
    fmt = {"result_format": "COMPLETE", "unexpected_index_column_names": ["name"]}
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name="gbmseg_validate",
            validation_definitions=[vd],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format=fmt,
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": df})
    res = next(iter(run.run_results.values()))
    site = ctx.get_docs_sites_urls()[0]["site_url"]
    problems: list[str] = []
    by_name = df.set_index("name")
    for r in res.results:
        if r.success:
            continue
        cfg = r.expectation_config
        col = cfg.kwargs.get("column")
        if col is None:
            problems.append(
                f"(dataset): {r.result.get('observed_value')} labelled image(s), fewer than "
                f"validate.min_images = {p.min_images}; add images or lower validate.min_images"
            )
            continue
        for hit in r.result.get("unexpected_index_list") or []:
            row = by_name.loc[hit["name"]]
            if isinstance(row, pd.DataFrame):  # a name used twice: name its last file
                row = row.iloc[-1]
            path = row["image"] or row["mask"]
            if col in ("has_image",):
                path = row["mask"]
            elif col in ("has_mask", "size_match", "mask_binary"):
                path = row["mask"] or row["image"]
            detail = f" ({row['error']})" if row["error"] else ""
            if col == "positive_fraction" and hit[col] > p.positive_fraction[1]:
                detail = " (the mask looks inverted: check the set's positive, black or white)"
            if col == "name":
                detail = " (the same name in the set's folders: rename one)"
            if col == "pixel_size_nm":
                detail = (
                    " (no calibration in the file: save it as DM3/DM4 or calibrated TIFF, set "
                    "the set's pixel_size_nm, or validate.require_pixel_size: false)"
                )
            found = hit[col].item() if hasattr(hit[col], "item") else hit[col]
            problems.append(f"{path}: {cfg.type}({col}): found {found!r}{detail}")
    return (
        bool(res.success),
        problems,
        res.to_json_dict(),
        Path(site.removeprefix("file://")).parent,
    )


def run(
    p: ValidateParams,
    raw: str | Path,
    out: str | Path,
    positive: str | dict[str, str],
    *,
    run_log: RunLog | None = None,
    pixel_size_nm: float | None = None,
    set_key: str = "sets.<set>.pixel_size_nm",
) -> dict:
    """Check the set at ``raw`` (and its ``test/`` folder); write the normalised set. Each
    image's pixel size (``pixel_size_nm`` when given, named ``set_key``, else the file's) is
    recorded in the manifest and kept in the normalised PNGs."""
    raw, out = Path(raw), Path(out)
    rows = build_table(raw, positive, p.labels, pixel_size_nm, set_key)
    df = pd.DataFrame(as_records(rows))
    ok, problems, gx_result, docs = check(df, p)
    if not ok:
        shutil.rmtree(docs, ignore_errors=True)
        raise ValidationFailed(raw, problems)
    with atomic_dir(out) as tmp:
        shutil.copytree(docs, tmp / "data_docs")
        shutil.rmtree(docs, ignore_errors=True)
        manifest, sheet = {}, []
        for row in rows:
            name = f"{row.name}.png"
            img = read_image(row.image)
            structure = load_structure(Path(row.mask), row.positive, p.labels, img.shape)
            size = (
                scale.given(row.pixel_size_nm, row.pixel_size_source, row.image)
                if row.pixel_size_nm
                else None
            )
            write_png(tmp / "images" / name, img, size)
            write_png(tmp / "masks" / name, structure, size)
            if len(sheet) < 16:
                sheet.append(thumbnail(overlay(img, structure)))
            manifest[row.name] = {
                "image_sha256": sha256_file(tmp / "images" / name),
                "mask_sha256": sha256_file(tmp / "masks" / name),
                "source_image_sha256": row.sha256,
                "pixels_sha256": row.pixels_sha256,
                "positive_fraction": round(row.positive_fraction, 6),
                "size": [row.height, row.width],
                "folder": row.folder,
                "test_only": row.test_only,
                "pixel_size_nm": row.pixel_size_nm,
                "pixel_size_source": row.pixel_size_source,
            }
        if (raw / "meta.json").is_file():
            shutil.copyfile(raw / "meta.json", tmp / "source_meta.json")
        write_png(tmp / "contact_sheet.png", grid(sheet))
        df.to_csv(tmp / "table.csv", index=False)
        write_json(tmp / "gx_result.json", gx_result)
        write_json(tmp / "manifest.json", manifest)
        write_json(
            tmp / "_meta.json", meta("validate", p.model_dump(mode="json"), {"raw": str(raw)})
        )
    summary = {
        "images": len(rows),
        "test_only_images": sum(r.test_only for r in rows),
        "positive_fraction_mean": round(float(df["positive_fraction"].mean()), 6),
        "expectations": len(gx_result["results"]),
        "calibrated_images": sum(r.pixel_size_nm is not None for r in rows),
    }
    if run_log:
        run_log.metrics(numbers(summary))
        run_log.artifact(out / "table.csv", "validate")
    log.info(
        "validate: %d pairs passed %d expectations -> %s", len(rows), summary["expectations"], out
    )
    if summary["calibrated_images"] < len(rows):
        log.warning(
            "validate: %d of %d image(s) carry no pixel size; thickness in nm needs one (set "
            "%s, or save them as DM3/DM4 or calibrated TIFF)",
            len(rows) - summary["calibrated_images"],
            len(rows),
            set_key,
        )
    return summary
