"""Batched inference (issue 18): generate() on a list of prompts."""
import numpy as np
import pytest

import llmc

TINY = dict(model_type="llama", vocab_size=61, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5)


def test_nested_list_is_never_one_prompt():
    m = llmc.Model.init(TINY, seed=1)
    for batch in ([[5, 6, 7], [8, 9, 10]], [[5, 6, 7]], np.array([[5, 6], [7, 8]]), [np.array([5, 6]), [7]]):
        with pytest.raises(ValueError, match="list of prompts"):
            m.generate(batch, max_new_tokens=2)
    assert len(m.generate([5, 6, 7], max_new_tokens=2)) == 2  # a flat list is one prompt
