"""The MLflow pyfunc wrapper: (N, 1, H, W) in, probabilities of the same shape out; any
other shape is refused with what it expected."""

from types import SimpleNamespace

import numpy as np
import pytest

from gbmseg.serving import UNetPyfunc
from tests.models import dark_model, membrane_image, save


def test_predicts_probabilities_for_a_batch_and_refuses_other_shapes(tmp_path):
    folder = save(dark_model(20.0), tmp_path / "model")
    wrapper = UNetPyfunc()
    wrapper.load_context(SimpleNamespace(artifacts={"weights": str(folder / "model.pt")}))
    img, structure = membrane_image(size=96, width=12.0)
    x = np.stack([img, img])[:, None].astype(np.float32)
    prob = wrapper.predict(None, x)
    assert prob.shape == x.shape and prob.min() >= 0.0 and prob.max() <= 1.0
    dice = (
        2
        * ((prob[0, 0] > 0.5) & (structure > 0)).sum()
        / ((prob[0, 0] > 0.5).sum() + structure.sum())
    )
    assert dice > 0.8
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, H, W\)"):
        wrapper.predict(None, x[:, 0])
