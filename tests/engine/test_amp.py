"""The precision choice: bf16 autocast only where it pays."""

import torch

from gbmseg.engine.amp import choose_precision


def test_bf16_autocast_is_chosen_on_cpus_with_amx():
    prec = choose_precision("cpu", "auto")
    from gbmseg.engine.amp import cpu_has_amx

    assert (prec.dtype == torch.bfloat16) == cpu_has_amx()
    assert choose_precision("cpu", "bf16").dtype == torch.bfloat16
    assert choose_precision("cpu", "fp32").dtype is None
