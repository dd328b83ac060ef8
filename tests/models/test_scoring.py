"""Class probabilities and OOD energy from logits: what the line, calibration and the gate share."""

from __future__ import annotations

import numpy as np
import torch

from models.scoring import energy, softmax


def test_softmax_and_energy_match_torch_even_for_large_logits():
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0], [-5.0, -5.0, -5.0]], dtype=np.float32)
    expected_p = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    expected_e = -torch.logsumexp(torch.from_numpy(logits), dim=1).numpy()
    np.testing.assert_allclose(softmax(logits), expected_p, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(energy(logits), expected_e, rtol=1e-6)
    assert np.isfinite(softmax(logits)).all() and np.isfinite(energy(logits)).all()
