"""Acceptance: the real all-MiniLM-L6-v2 on real EWT dev (marked slow; still runs in CI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from redundancy.data import load_task
from redundancy.extract import ExtractConfig, extract, load_model
from redundancy.store import ActivationStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    try:
        return load_model("all-MiniLM-L6-v2")
    except Exception as err:  # pragma: no cover - the set-up step installs it
        pytest.fail(f"the default weights package is missing: {err}")


def test_ewt_dev_store_matches_direct_forward(minilm, tmp_path):
    data = load_task("pos", "dev")
    res = extract(data, minilm, tmp_path / "s", ExtractConfig(batch_size=64))
    store = ActivationStore.open(tmp_path / "s", verify="full")
    assert (store.n_items, store.n_layers, store.hidden) == (25_147, 7, 384)
    assert res.n_sentences == 2_001 and res.stats["n_windowed"] == 0
    assert len(store.label_names) == 49  # XPOS tags present in dev
    assert store.manifest.weights_sha256 != "unknown" and store.manifest.aggregation == "last"
    acts = store.activations
    # 25 sentences spread over the split: rows equal an unpadded, unbatched forward pass.
    rng = np.random.default_rng(0)
    offsets = np.concatenate([[0], np.cumsum([len(s.words) for s in data.items])])
    for i in sorted(rng.choice(len(data.items), 25, replace=False)):
        words = list(data.items[i].words)
        enc = minilm.tokenizer(words, is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            hs = torch.stack(minilm.model(**enc, output_hidden_states=True).hidden_states)[:, 0].numpy()
        last = {w: t for t, w in enumerate(enc.word_ids()) if w is not None}
        want = np.stack([hs[:, last[w]] for w in range(len(words))])
        np.testing.assert_allclose(acts[offsets[i] : offsets[i + 1]], want, atol=1e-4, rtol=1e-3)
    # Real contextual vectors: the same word in two sentences gets different top-layer vectors.
    the = [k for k, s in enumerate(data.items) for w in s.words if w == "the"][:2]
    assert len(the) == 2
    rows = [offsets[s] + list(data.items[s].words).index("the") for s in the]
    assert not np.allclose(acts[rows[0], 6], acts[rows[1], 6], atol=1e-3)
