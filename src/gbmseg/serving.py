"""Models-from-code entry point: MLflow executes this file to build the served model.

The U-Net's serving face: (N, 1, H, W) floats in [0, 1] -> probabilities of the same shape,
from the state_dict logged beside it (never a pickled network).
"""

from __future__ import annotations

import numpy as np

from gbmseg.tracking import PythonModel, set_model


class UNetPyfunc(PythonModel):
    def load_context(self, context) -> None:
        from gbmseg.engine import checkpoint

        self.model = checkpoint.load_model(context.artifacts["weights"])

    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        from gbmseg.engine.amp import choose_precision
        from gbmseg.inference import predict_proba

        x = np.asarray(model_input, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected input of shape (N, 1, H, W), got {x.shape}")
        prec = choose_precision("auto", "fp32")
        self.model.to(prec.device)
        tile = max(x.shape[2], x.shape[3], self.model.multiple)
        return np.stack(
            [predict_proba(self.model, im[0], prec, tile=min(tile, 512))[None] for im in x]
        )


set_model(UNetPyfunc())
