"""The numpy MiniLM: a batch of sentences of different lengths embeds as each sentence alone."""

from __future__ import annotations

import numpy as np

from pipelines.agents.embedding import shared_encoder


def test_batched_padding_changes_no_vector() -> None:
    texts = ["Hi.", "Where is my order 1042?", "Is it going to be chilly in Geneva tomorrow evening, please?"]
    encoder = shared_encoder()
    together = encoder.encode(texts)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    assert together.shape == (3, 384)
    assert np.abs(together - alone).max() < 1e-5
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert float(together[1] @ together[2]) < 0.9  # different sentences stay apart
