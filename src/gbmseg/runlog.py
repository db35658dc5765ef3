"""What a step may log to the experiment tracker, without importing it.

Every step takes an optional ``run_log`` of this shape and logs its own parameters, metrics
and files through it (``gbmseg.tracking.RunLogger`` is the MLflow implementation; ``None``
when tracking is off or on a non-zero torchrun rank).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class RunLog(Protocol):
    run_id: str

    def params(self, values: dict[str, Any]) -> None: ...

    def metrics(self, values: dict[str, float], step: int | None = None) -> None: ...

    def tags(self, values: dict[str, Any]) -> None: ...

    def artifact(self, path: str | Path, folder: str | None = None) -> None: ...


def numbers(values: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a result dict (booleans left out), as metrics."""
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
