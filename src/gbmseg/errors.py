"""Errors that the CLI turns into one clear line and an exit code. Nothing heavy is imported
here (no torch, no mlflow): the CLI catches them without loading either."""


class TrackingError(RuntimeError):
    """MLflow is unreachable, refused a request, or holds a version that cannot be trusted."""


class StorageError(RuntimeError):
    """S3 unreachable, refused the request, or holds an incomplete upload."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or not a gbmseg checkpoint."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class ExportError(RuntimeError):
    """An exported model does not reproduce the original (ONNX Runtime, bioimageio test)."""
