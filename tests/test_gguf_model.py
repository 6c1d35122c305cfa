"""Models from and to GGUF, against three independent oracles:
- transformers: small random models of each architecture, converted to GGUF by llama.cpp's convert_hf_to_gguf.py;
  llmc's logits from the GGUF equal transformers' (F32: max abs 1e-4) and llmc's from the HF folder;
- gguf-py: files llmc writes read back with the same tensors (bytes) and keys as the converter's;
- llama.cpp (llama-cpp-python): it loads llmc's files and gives the same logits (F32: 1e-3) and greedy tokens, and
  llmc gives llama.cpp's logits on llama.cpp's own quantized files.
Fixtures are made once and cached (tests/gguf_fixtures.py); everything skips with the reason when a tool is absent.
"""
import numpy as np
import pytest

import llmc

from gguf_fixtures import fixture

IDS = [1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975, 278, 17366, 11203, 29889, 13, 13, 1576, 338, 263]

# arch, tokenizer, config: small random models (2 layers, d_model 64, GQA 4/2)
CASES = {
    "llama": ("llama", "llama2", {}),
    "llama3-rope": ("llama", "llama2", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                         "original_max_position_embeddings": 16},
                                        "rope_theta": 500000.0}),
    "llama-tied": ("llama", "llama2", {"tie_word_embeddings": True}),
    "mistral": ("mistral", "llama2", {"sliding_window": 4096}),
    "qwen2": ("qwen2", "qwen3", {"tie_word_embeddings": True}),
    "qwen3": ("qwen3", "qwen3", {"tie_word_embeddings": True, "head_dim": 32}),
    "gpt2": ("gpt2", "qwen3", {}),
    # llama.cpp's Mixtral form: arch llama + expert_count, experts stacked in 3-D ffn_*_exps tensors
    "mixtral": ("mixtral", "llama2", {"num_local_experts": 4, "num_experts_per_tok": 2}),
    # rows of 256 and 512 values: whole K-quant blocks (llama.cpp falls back to Q5_0 / Q8_0 for rows that are not)
    "llama256": ("llama", "llama2", {"hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4,
                                     "num_key_value_heads": 2}),
}


def _fixture(name, outtype="f32"):
    arch, tok, cfg = CASES[name]
    return fixture(f"model-{name}", arch, tok, outtype, **cfg)


def _hf_logits(hf_dir, ids):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    m = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return m(torch.tensor([ids])).logits[0].numpy()


def _ids(model):
    return [i % model.vocab_size for i in IDS]


@pytest.mark.parametrize("name", list(CASES))
def test_gguf_logits_equal_transformers(name):
    hf_dir, path = _fixture(name)
    m = llmc.Model.load(path)
    ids = _ids(m)
    got = m.logits(ids)
    want = _hf_logits(hf_dir, ids)
    assert np.abs(got - want).max() < 1e-4
    from_hf = llmc.Model.load(hf_dir).logits(ids)
    assert np.abs(got - from_hf).max() < 1e-5
    # the decode path (KV cache) gives the same last-token logits
    s = m.session()
    s.append(ids[:-3])
    for t in ids[-3:]:
        last = s.append([t])
    assert np.abs(last - want[-1]).max() < 1e-4
    assert m.tokenizer is not None


def test_gguf_weights_stay_mapped_and_typed():
    _, path = _fixture("llama", "q8_0")
    m = llmc.Model.load(path)
    types = m.weight_types()
    assert types["model.layers.0.mlp.down_proj.weight"] == "q8_0"
    assert types["model.norm.weight"] == "f32"
    info = llmc.gguf_info(path)
    # the stored bytes are what the file holds (the down projection is not permuted: compare it directly)
    f = llmc.gguf.GGUFFile(path)
    view = m.state_dict()["model.layers.0.mlp.down_proj.weight"]
    np.testing.assert_array_equal(view.reshape(-1), f.tensor_bytes("blk.0.ffn_down.weight"))
    assert any(t["type"] == "q8_0" for t in info["tensors"])


def test_gguf_q8_0_close_to_f32():
    hf_dir, path = _fixture("llama", "q8_0")
    m = llmc.Model.load(path)
    ids = _ids(m)
    want = _hf_logits(hf_dir, ids)
    assert np.abs(m.logits(ids) - want).max() < 0.05 * np.abs(want).max()
    # dtype= converts on load
    m2 = llmc.Model.load(_fixture("llama")[1], dtype="q8_0")
    assert m2.weight_types()["model.layers.0.self_attn.q_proj.weight"] == "q8_0"


# ---------------------------------------------------------------------------------------------- writing
@pytest.mark.parametrize("name", ["llama", "llama3-rope", "qwen2", "qwen3", "gpt2"])
def test_save_read_back_by_gguf_py(name, tmp_path):
    gguf = pytest.importorskip("gguf")
    hf_dir, path = _fixture(name)
    out = tmp_path / "x.gguf"
    llmc.Model.load(hf_dir).save(out, format="gguf")
    ours, theirs = gguf.GGUFReader(str(out)), gguf.GGUFReader(str(path))
    t_ours = {t.name: t for t in ours.tensors}
    t_theirs = {t.name: t for t in theirs.tensors}
    if name == "gpt2":
        t_theirs.pop("output.weight", None)  # some converter versions write GPT-2's tied head twice
    assert set(t_ours) == set(t_theirs)
    for n, t in t_theirs.items():
        assert t_ours[n].tensor_type == t.tensor_type, n
        assert list(t_ours[n].shape) == list(t.shape), n
        if n == "rope_freqs.weight":  # computed from the config by both, in float32 by the converter
            np.testing.assert_allclose(np.asarray(t_ours[n].data), np.asarray(t.data), rtol=1e-6, err_msg=n)
            continue
        np.testing.assert_array_equal(np.asarray(t_ours[n].data), np.asarray(t.data), err_msg=n)
    arch = theirs.fields["general.architecture"].contents()
    assert ours.fields["general.architecture"].contents() == arch
    for k, f in theirs.fields.items():
        if k.startswith(f"{arch}.") or k.startswith("tokenizer.ggml.") and k != "tokenizer.ggml.scores":
            if k not in ours.fields:
                assert k in ("tokenizer.ggml.add_sep_token",), f"missing key {k}"
                continue
            a, b = ours.fields[k].contents(), f.contents()
            if isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-6), k
            else:
                assert a == b, k


def _llama_cpp_logits(path, ids):
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_batch=64, logits_all=True, verbose=False, n_threads=1)
    llm.eval(ids)
    out = np.array(llm.scores[: len(ids)], dtype=np.float32)
    greedy, seq = [], list(ids)
    for _ in range(6):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        greedy.append(tok)
        llm.eval([tok])
    return out, greedy


def _llmc_greedy(m, ids, n=6):
    s = m.session()
    logits = s.append(ids)
    out = []
    for _ in range(n):
        tok = int(np.argmax(logits))
        out.append(tok)
        logits = s.append([tok])
    return out


@pytest.mark.parametrize("name", ["llama", "llama3-rope", "qwen2", "qwen3", "gpt2"])
def test_llama_cpp_runs_llmc_files(name, tmp_path):
    hf_dir, _ = _fixture(name)
    m = llmc.Model.load(hf_dir)
    out = tmp_path / "x.gguf"
    m.save(out, format="gguf")
    ids = _ids(m)
    theirs, greedy = _llama_cpp_logits(out, ids)
    ours = m.logits(ids)
    assert np.abs(ours - theirs).max() < 1e-3
    assert _llmc_greedy(m, ids) == greedy


@pytest.mark.parametrize("qtype", ["q8_0", "q4_0", "q4_k"])
def test_llmc_runs_llama_cpp_quantized_files(qtype, tmp_path):
    """llama.cpp quantizes its own F32 file; llmc loads the result (types kept) and matches llama.cpp's logits."""
    llama_cpp = pytest.importorskip("llama_cpp")
    _, f32 = _fixture("llama256")
    q = tmp_path / f"{qtype}.gguf"
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
               "q4_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}[qtype]
    p.pure = True
    assert llama_cpp.llama_model_quantize(str(f32).encode(), str(q).encode(), p) == 0
    m = llmc.Model.load(q)
    stored = {t["name"]: t["type"] for t in llmc.gguf_info(q)["tensors"]}
    assert stored["blk.0.ffn_up.weight"] == qtype
    for hf, ty in m.weight_types().items():  # every tensor in the type llama.cpp stored (norms: f32)
        assert ty == stored[llmc._core.gguf_name("llama", hf, True)], hf
    ids = _ids(m)
    theirs, greedy = _llama_cpp_logits(q, ids)
    ours = m.logits(ids)
    # both quantize the activations to 8 bits for the integer dot products, in different blockings: close, not equal
    assert np.abs(ours - theirs).max() < 0.02 * np.abs(theirs).max()


def test_save_quantized_runs_in_llama_cpp(tmp_path):
    hf_dir, _ = _fixture("llama")
    m = llmc.Model.load(hf_dir)
    out = tmp_path / "q.gguf"
    m.save(out, format="gguf", dtype="q8_0")
    assert m.dtype == "f32"  # the model itself is not converted
    q = llmc.Model.load(out)
    assert q.weight_types()["model.layers.0.self_attn.k_proj.weight"] == "q8_0"
    ids = _ids(m)
    theirs, _ = _llama_cpp_logits(out, ids)
    assert np.abs(q.logits(ids) - theirs).max() < 0.02 * np.abs(theirs).max()


def test_gguf_mixtral_routing_and_q8_0():
    """Mixtral from GGUF: the experts are slices of the 3-D tensors where they lie (no copy), the routing equals the
    transformers folder's, and the model converts to a recipe like any other."""
    hf_dir, path = _fixture("mixtral")
    m = llmc.Model.load(path)
    assert m.arch == "mixtral" and m.config["num_local_experts"] == 4 and m.config["num_experts_per_tok"] == 2
    ids = _ids(m)
    ref = llmc.Model.load(hf_dir)
    for a, b in zip(m.routing(ids), ref.routing(ids)):
        np.testing.assert_array_equal(a.experts, b.experts)
        np.testing.assert_allclose(a.router_logits, b.router_logits, atol=1e-5, rtol=0)
    q = llmc.Model.load(path, dtype="q8_0")
    assert q.weight_types()["model.layers.0.block_sparse_moe.experts.3.w2.weight"] == "q8_0"
    assert q.weight_types()["model.layers.0.block_sparse_moe.gate.weight"] == "f32"
    # the same f32 values quantized the same way, whether they came from the GGUF slices or the folder
    np.testing.assert_array_equal(q.logits(ids), llmc.Model.load(hf_dir, dtype="q8_0").logits(ids))
