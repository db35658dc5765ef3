"""Pixel size: what one pixel measures in nm, in x and y, and where that figure came from.

Read once from the microscope's own file (TIFF resolution tags with ImageJ's unit or
centimetres, OME-XML, a PNG ``pHYs`` chunk in metres, the DM3/DM4 calibration), or given
by a parameter; carried from there in every file and table gbmseg writes. A figure in nm
is never made from a guessed pixel size: a file without a calibration has none.
"""

from __future__ import annotations

import json
import logging
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# nm per unit; the spellings microscopes, ImageJ and OME write
UNIT_NM = {
    "pm": 1e-3, "a": 0.1, "å": 0.1, "angstrom": 0.1, "nm": 1.0, "nanometer": 1.0,
    "nanometre": 1.0, "um": 1e3, "µm": 1e3, "μm": 1e3, "\\u00b5m": 1e3, "micron": 1e3,
    "micrometer": 1e3, "micrometre": 1e3, "mm": 1e6, "cm": 1e7, "m": 1e9,
}  # fmt: skip
ANISOTROPY = 0.005  # x and y may differ by this fraction (drift-corrected cameras), warned
PLAUSIBLE_NM = (0.01, 5000.0)  # an EM pixel: from atomic resolution to a 5 um overview
TAG = "gbmseg"  # key of the record gbmseg writes beside the calibration (its source)
TIFF_TAG = 65000  # a private TIFF tag holding that record (JSON)


class CalibrationError(ValueError):
    """A pixel size that cannot be trusted: anisotropic, implausible or of unknown unit."""


@dataclass(frozen=True)
class PixelSize:
    """The size of one pixel (nm) and where it came from."""

    x_nm: float
    y_nm: float
    source: str

    @property
    def nm(self) -> float:
        """The one figure used for lengths (x and y agree within ``ANISOTROPY``)."""
        return (self.x_nm + self.y_nm) / 2

    def describe(self) -> str:
        return f"{self.nm:.4g} nm/px ({self.source})"

    def record(self) -> dict:
        return {"pixel_size_nm": round(self.nm, 6), "pixel_size_source": self.source}


def checked(x_nm: float, y_nm: float, source: str, where: str | Path) -> PixelSize:
    """A PixelSize, refused when implausible or when x and y differ by more than 0.5%."""
    lo, hi = PLAUSIBLE_NM
    for v in (x_nm, y_nm):
        if not (lo <= v <= hi):
            raise CalibrationError(
                f"{where}: pixel size {v:.4g} nm ({source}) is outside {lo:g}-{hi:g} nm; "
                "check the file's calibration or give the pixel size by parameter"
            )
    diff = abs(x_nm - y_nm) / min(x_nm, y_nm)
    if diff > ANISOTROPY:
        raise CalibrationError(
            f"{where}: pixels are {x_nm:.4g} x {y_nm:.4g} nm ({source}), {diff:.1%} apart; "
            "gbmseg measures square pixels: resample the image to square pixels first"
        )
    if diff > 0:
        log.warning("%s: pixels %.4g x %.4g nm (%s) differ by %.2f%%; using their mean",
                    where, x_nm, y_nm, source, 100 * diff)  # fmt: skip
    return PixelSize(_sig(x_nm), _sig(y_nm), source)


def _sig(v: float) -> float:
    """Six significant digits: a calibration stored as float32 reads back as itself."""
    return float(f"{float(v):.6g}")


def choose(found: PixelSize | None, nm: float | None, name: str, where: str | Path):
    """The pixel size to use: ``nm`` when given (by the parameter or flag ``name``; warned
    when it contradicts the file), else the file's own; None when neither exists."""
    if nm is None:
        return found
    if found is not None and abs(found.nm - nm) > 0.01 * found.nm:
        log.warning("%s: %s = %g nm overrides the file's %s", where, name, nm, found.describe())
    return given(nm, f"{name} (given)", where)


def given(nm: float, source: str, where: str | Path = "parameter") -> PixelSize:
    return checked(nm, nm, source, where)


def unit_nm(unit: str, where: str | Path) -> float:
    key = unit.strip().lower().replace("microns", "micron").rstrip("s") if unit else ""
    if key not in UNIT_NM:
        raise CalibrationError(f"{where}: unknown length unit {unit!r} in the calibration")
    return UNIT_NM[key]


def _ome(xml: str, where: Path) -> PixelSize | None:
    root = ET.fromstring(xml)
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"), None)
    if pixels is None or "PhysicalSizeX" not in pixels.attrib:
        return None
    sx, sy = float(pixels.attrib["PhysicalSizeX"]), float(pixels.attrib.get("PhysicalSizeY", 0))
    to_nm = [unit_nm(pixels.attrib.get(f"PhysicalSize{a}Unit", "µm"), where) for a in ("X", "Y")]
    source = f"OME-XML PhysicalSize of {where.name}"
    return checked(sx * to_nm[0], (sy or sx) * to_nm[1], source, where)


def _recorded_source(description: str) -> str | None:
    """The origin gbmseg recorded beside a calibration it wrote (a file it was read from, or
    a parameter): files carry the figure, the origin says where it was first read."""
    try:
        doc = json.loads(description)
    except (ValueError, TypeError):
        return None
    rec = doc.get(TAG) if isinstance(doc, dict) else None
    return rec.get("pixel_size_source") if isinstance(rec, dict) else None


def from_tiff(tif, where: Path) -> PixelSize | None:
    """OME-XML, else the resolution tags with ImageJ's unit, else in centimetres; a TIFF
    whose resolution is in inches (scanners, screenshots: 72 dpi) or absent has none. The
    origin gbmseg recorded in a file it wrote (its private tag) names the source."""
    tags = tif.pages[0].tags
    origin = _recorded_source(tags[TIFF_TAG].value) if TIFF_TAG in tags else None
    found = _tiff_calibration(tif, where)
    if found is not None and origin:
        return PixelSize(found.x_nm, found.y_nm, origin)
    return found


def _tiff_calibration(tif, where: Path) -> PixelSize | None:
    if tif.is_ome and tif.ome_metadata:
        found = _ome(tif.ome_metadata, where)
        if found is not None:
            return found
    page = tif.pages[0]
    tags = page.tags
    if "XResolution" not in tags:
        return None
    per = []
    for name in ("XResolution", "YResolution"):
        num, den = (tags[name] if name in tags else tags["XResolution"]).value
        per.append(num / den if den and num else 0.0)
    if min(per) <= 0:
        return None
    unit = (tif.imagej_metadata or {}).get("unit")
    if unit:
        to_nm, source = unit_nm(unit, where), f"ImageJ resolution and unit of {where.name}"
    elif "ResolutionUnit" in tags and tags["ResolutionUnit"].value == 3:
        to_nm, source = 1e7, f"TIFF resolution tags (cm) of {where.name}"
    else:
        return None
    return checked(to_nm / per[0], to_nm / per[1], source, where)


def png_chunks(data: bytes) -> dict[str, list[bytes]]:
    """Ancillary chunks of a PNG (pHYs, tEXt) by type."""
    out: dict[str, list[bytes]] = {}
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        name = kind.decode("latin-1")
        if name == "IDAT" or name == "IEND":
            break
        out.setdefault(name, []).append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return out


def from_png(path: Path) -> PixelSize | None:
    """The ``pHYs`` chunk in pixels per metre (unit 1); unit 0 is only an aspect ratio."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)  # pHYs and tEXt come before the image data
    chunks = png_chunks(head)
    if "pHYs" not in chunks or len(chunks["pHYs"][0]) != 9:
        return None
    px, py, unit = struct.unpack(">IIB", chunks["pHYs"][0])
    if unit != 1 or not px or not py:
        return None
    source = f"PNG pHYs (pixels per metre) of {path.name}"
    for text in chunks.get("tEXt", []):  # an origin gbmseg recorded when it wrote the file
        key, _, value = text.partition(b"\x00")
        if key == f"{TAG}:pixel_size_source".encode():
            source = value.decode("latin-1")
    return checked(1e9 / px, 1e9 / py, source, path)


def png_metadata(pixel_size: PixelSize) -> tuple[tuple[float, float], dict[str, str]]:
    """Pillow's ``dpi`` (stored as pixels per metre) and the text recording the source."""
    ppm = round(1e9 / pixel_size.nm)
    return (ppm * 0.0254, ppm * 0.0254), {f"{TAG}:pixel_size_source": pixel_size.source}


def tiff_metadata(pixel_size: PixelSize) -> dict:
    """tifffile.imwrite keyword arguments: OME-XML PhysicalSizeX/Y (what Fiji, QuPath and
    napari read), the resolution tags in pixels per cm, and the origin in a private tag."""
    per_cm, um = 1e7 / pixel_size.nm, pixel_size.nm / 1e3
    ome = {"axes": "YX", "PhysicalSizeX": um, "PhysicalSizeXUnit": "µm",
           "PhysicalSizeY": um, "PhysicalSizeYUnit": "µm"}  # fmt: skip
    record = json.dumps({TAG: pixel_size.record()})
    return {
        "ome": True,
        "metadata": ome,
        "resolution": (per_cm, per_cm),
        "resolutionunit": "CENTIMETER",
        "extratags": [(TIFF_TAG, "s", 0, record, True)],
    }
