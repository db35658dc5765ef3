"""Write Gatan DigitalMicrograph files (.dm3 version 3, .dm4 version 4) with a known
calibration, for tests: the tag-tree layout the format documents (header, a root tag group,
ImageList / ImageData / Calibrations / Dimension, Data as an array tag), little-endian data.
Only what a 2-D image needs; the files are read back by rosettasciio, a real DM reader."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# DM data-type codes of the pixel array (ImageData.DataType) and of tag values
IMAGE_TYPES = {np.dtype("<i2"): 1, np.dtype("<f4"): 2, np.dtype("u1"): 6, np.dtype("<u2"): 10}
TAG_TYPES = {np.dtype("<i2"): 2, np.dtype("<i4"): 3, np.dtype("<u2"): 4, np.dtype("<f4"): 6,
             np.dtype("u1"): 10, np.dtype("<f8"): 7}  # fmt: skip


class _Writer:
    def __init__(self, version: int):
        self.version = version
        self.q = ">q" if version == 4 else ">l"  # lengths: 8 bytes in DM4, 4 in DM3

    def n(self, value: int) -> bytes:
        return struct.pack(self.q, value)

    def entry(self, kind: int, name: str, body: bytes) -> bytes:
        head = struct.pack(">bh", kind, len(name)) + name.encode("latin-1")
        size = self.n(len(body)) if self.version == 4 else b""
        return head + size + body

    def group(self, items: list[bytes]) -> bytes:
        return b"\x00\x00" + self.n(len(items)) + b"".join(items)

    def data(self, info: list[int], payload: bytes) -> bytes:
        return b"%%%%" + self.n(len(info)) + b"".join(self.n(i) for i in info) + payload

    def scalar(self, name: str, value: float, dtype: str) -> bytes:
        dt = np.dtype(dtype)
        return self.entry(21, name, self.data([TAG_TYPES[dt]], np.asarray(value, dt).tobytes()))

    def array(self, name: str, values: np.ndarray) -> bytes:
        dt = values.dtype.newbyteorder("<") if values.dtype.itemsize > 1 else values.dtype
        payload = np.ascontiguousarray(values, dt).tobytes()
        return self.entry(21, name, self.data([20, TAG_TYPES[np.dtype(dt)], values.size], payload))

    def text(self, name: str, value: str) -> bytes:  # DM strings: arrays of UTF-16 code units
        return self.array(name, np.frombuffer(value.encode("utf-16-le"), "<u2"))

    def named_group(self, name: str, items: list[bytes]) -> bytes:
        return self.entry(20, name, self.group(items))


def write_dm(path: Path, pixels: np.ndarray, scale: tuple[float, float], unit: str = "nm") -> Path:
    """A 2-D image with its calibration: ``scale`` = (y, x) size of a pixel in ``unit``."""
    version = {".dm3": 3, ".dm4": 4}[Path(path).suffix.lower()]
    w = _Writer(version)
    arr = np.ascontiguousarray(pixels)
    h, wd = arr.shape
    dims = [  # DM lists the fastest axis (x) first
        w.named_group(
            "", [w.scalar("Origin", 0.0, "<f4"), w.scalar("Scale", s, "<f4"), w.text("Units", unit)]
        )
        for s in (scale[1], scale[0])
    ]
    brightness = [
        w.scalar("Origin", 0.0, "<f4"),
        w.scalar("Scale", 1.0, "<f4"),
        w.text("Units", ""),
    ]
    image_data = [
        w.named_group(
            "Calibrations",
            [w.named_group("Brightness", brightness), w.named_group("Dimension", dims)],
        ),
        w.array("Data", arr.reshape(-1)),
        w.scalar("DataType", IMAGE_TYPES[arr.dtype], "<i4"),
        w.named_group("Dimensions", [w.scalar("", wd, "<i4"), w.scalar("", h, "<i4")]),
        w.scalar("PixelDepth", arr.dtype.itemsize, "<i4"),
    ]
    image = w.named_group(
        "",
        [
            w.named_group("ImageData", image_data),
            w.named_group("ImageTags", []),
            w.text("Name", Path(path).stem),
        ],
    )
    root = w.group([w.named_group("ImageList", [image])])
    body = w.n(0) + struct.pack(">l", 1) + root + b"\x00" * 8  # size, little-endian flag
    head = struct.pack(">l", version)
    size = len(head) + len(body)
    Path(path).write_bytes(head + w.n(size) + body[len(w.n(0)) :])
    return Path(path)
