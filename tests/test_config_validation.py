"""config.json validation (csrc/model_config.c): every field is checked in the type llmc stores it in — counts as
size_t, numbers as float32 (1e-300 is a positive double but 0.0f), flags as bools — and a bad value is a
ValueError naming the file, the field and the value, at load time rather than as wrong logits later."""
import json

import numpy as np
import pytest

import llmc

LLAMA = dict(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
GPT2 = dict(model_type="gpt2", vocab_size=64, n_embd=32, n_layer=1, n_head=4, n_positions=32)
BERT = dict(model_type="bert", vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
            intermediate_size=48, max_position_embeddings=32)
L3 = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
          original_max_position_embeddings=16)

BAD = [
    # (base, changes, words the message must contain)
    (LLAMA, dict(rope_theta=1e-300), ["'rope_theta'", "rounds to 0"]),
    (LLAMA, dict(rope_theta=-5.0), ["'rope_theta'", "-5"]),
    (LLAMA, dict(rope_theta=1e-44, head_dim=32), ["'rope_theta'", "not finite"]),
    (LLAMA, dict(rope_theta=1e39), ["'rope_theta'", "float32"]),
    (LLAMA, dict(rope_theta="10000"), ["'rope_theta'", "a string"]),
    (LLAMA, dict(rope_parameters=dict(rope_theta=0.0, rope_type="default")), ["'rope_theta'"]),
    (LLAMA, dict(rms_norm_eps=-1e-6), ["'rms_norm_eps'", ">= 0"]),
    (LLAMA, dict(rms_norm_eps=1e40), ["'rms_norm_eps'", "float32"]),
    (GPT2, dict(layer_norm_epsilon=-1e-5), ["'layer_norm_epsilon'", ">= 0"]),
    (BERT, dict(layer_norm_eps=-1.0), ["'layer_norm_eps'", ">= 0"]),
    (LLAMA, dict(hidden_size=3), ["'hidden_size'", "head dimension of 0"]),
    (LLAMA, dict(head_dim=0), ["'head_dim'", "got 0"]),
    (LLAMA, dict(head_dim=7), ["'head_dim'", "even"]),
    (LLAMA, dict(num_key_value_heads=8), ["'num_key_value_heads'"]),
    (LLAMA, dict(num_key_value_heads=0), ["'num_key_value_heads'", "got 0"]),
    (LLAMA, dict(vocab_size=2**31), ["'vocab_size'", "2147483648"]),
    (LLAMA, dict(vocab_size=-1), ["'vocab_size'", "-1"]),
    (LLAMA, dict(num_hidden_layers=2.5), ["'num_hidden_layers'", "2.5"]),
    (LLAMA, dict(intermediate_size=2**50), ["'intermediate_size'"]),
    (LLAMA, dict(tie_word_embeddings="yes"), ["'tie_word_embeddings'", "true or false"]),
    (LLAMA, dict(hidden_act=3), ["'hidden_act'", "a string"]),
    (LLAMA, dict(model_type=7), ["'model_type'", "a string"]),
    (LLAMA, dict(rope_scaling=dict(L3, factor=1e-50)), ["'factor'", "rounds to 0"]),
    (LLAMA, dict(rope_scaling=dict(L3, original_max_position_embeddings=1e300)),
     ["'original_max_position_embeddings'"]),
    (LLAMA, dict(rope_scaling=dict(L3, high_freq_factor=0.5)), ["high_freq_factor"]),
    (LLAMA, dict(rope_scaling=dict(L3, rope_type=5)), ["'rope_type'", "a string"]),
    (GPT2, dict(n_head=5), ["not divisible"]),
    (BERT, dict(hidden_act=None, type_vocab_size=0), ["'type_vocab_size'"]),
]


@pytest.mark.parametrize("base,changes,words", BAD, ids=[f"{b['model_type']}-{list(c)[0]}-{i}"
                                                         for i, (b, c, _) in enumerate(BAD)])
def test_bad_config_is_refused_naming_the_field(tmp_path, base, changes, words):
    cfg = dict(base, **changes)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError) as e:
        llmc.Model.load(tmp_path)
    msg = str(e.value)
    assert "config.json" in msg
    for w in words:
        assert w in msg, msg
    with pytest.raises(ValueError) as e:  # the same check for random-weight models
        llmc.Model.init(cfg)
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("cfg", [LLAMA, GPT2, BERT, dict(LLAMA, rope_theta=1.0, rms_norm_eps=0.0),
                                 dict(LLAMA, rope_scaling=L3), dict(LLAMA, hidden_size=30, head_dim=8)])
def test_good_configs_still_load(tmp_path, cfg):
    m = llmc.Model.init(cfg, seed=0)
    m.save(tmp_path / "m")
    m2 = llmc.Model.load(tmp_path / "m")
    ids = [1, 2, 3, 4]
    out = m2.logits(ids) if cfg["model_type"] != "bert" else m2.hidden_states(ids)
    assert np.isfinite(out).all()
