"""gbmseg: EM segmentation MLOps pipeline."""

__version__ = "0.1.0"
