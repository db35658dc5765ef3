"""Models-from-code entry point: MLflow executes this file to build the served model."""

from gbmseg.tracking import UNetPyfunc, set_model

set_model(UNetPyfunc())
