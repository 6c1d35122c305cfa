"""llmc.scaling: parameter counts against transformers, FLOP counts against a hand derivation and against the
matrix products llmc's C core really runs (its FLOP counter), the Chinchilla paper's FLOP table and Table 3, the
closed-form compute optimum against brute force, and the fits recovering known laws from noisy synthetic runs."""
import math

import numpy as np
import pytest

import llmc
from llmc import scaling as S

LLAMA = dict(model_type="llama", vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False)
QWEN2 = dict(LLAMA, model_type="qwen2", tie_word_embeddings=True)
QWEN3 = dict(LLAMA, model_type="qwen3", head_dim=32, tie_word_embeddings=True)
GPT2 = dict(model_type="gpt2", vocab_size=300, n_embd=64, n_layer=2, n_head=4, n_positions=64)
BERT = dict(model_type="bert", vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=64)


# ------------------------------------------------------------------------------------------------ parameters
def _hf_params(cfg):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    mt = cfg["model_type"]
    c = transformers.AutoConfig.for_model(**cfg)
    if mt == "bert":
        model = transformers.BertModel(c, add_pooling_layer=False)  # llmc's bert has no pooler
    else:
        model = transformers.AutoModelForCausalLM.from_config(c)
    return sum(p.numel() for p in model.parameters())  # shared (tied) tensors are listed once


@pytest.mark.parametrize("cfg", [LLAMA, QWEN2, QWEN3, GPT2, BERT], ids=lambda c: c["model_type"])
def test_n_params_matches_transformers_and_llmc(cfg):
    assert S.n_params(cfg) == _hf_params(cfg)
    model = llmc.Model.init(cfg, seed=0)
    assert S.n_params(model) == sum(v.size for v in model.state_dict().values())


def test_n_params_moe_matches_transformers():
    mixtral = dict(model_type="mixtral", vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                   max_position_embeddings=64)
    assert S.n_params(mixtral) == _hf_params(mixtral)
    qmoe = dict(model_type="qwen2_moe", vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2,
                moe_intermediate_size=24, shared_expert_intermediate_size=40, decoder_sparse_step=1,
                mlp_only_layers=[1], max_position_embeddings=64, tie_word_embeddings=False)
    assert S.n_params(qmoe) == _hf_params(qmoe)
    # active parameters: 2 of the 4 experts of each MoE layer
    d, fe = 32, 48
    assert S.n_params(mixtral) - S.n_params(mixtral, active=True) == 2 * 2 * 3 * d * fe


def test_n_params_non_embedding():
    d, V = 64, 300
    assert S.n_params(LLAMA) - S.n_params(LLAMA, non_embedding=True) == 2 * V * d  # embed_tokens + own lm_head
    assert S.n_params(QWEN2) - S.n_params(QWEN2, non_embedding=True) == V * d  # tied
    assert S.n_params(GPT2) - S.n_params(GPT2, non_embedding=True) == V * d + 64 * d  # wte + wpe
    assert S.n_params(BERT) - S.n_params(BERT, non_embedding=True) == V * d + 64 * d + 2 * d  # + token types


# ------------------------------------------------------------------------------------------------ FLOPs
def test_flops_hand_derivation_tiny_llama():
    # d = 8, one layer, 2 query heads and 1 kv head of size 4, MLP 12, vocabulary 10, T = 4
    cfg = dict(model_type="llama", vocab_size=10, hidden_size=8, intermediate_size=12, num_hidden_layers=1,
               num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16)
    f = S.flops(cfg, 4)
    want = dict(attn_qkv=2 * 8 * (8 + 4 + 4),  # q: 8 -> 8, k and v: 8 -> 4 each
                attn_scores=2 * 2 * 4 * 4,      # each of 2 heads: a 4-dim dot product with each of 4 keys
                attn_values=2 * 2 * 4 * 4,      # and a weighted sum of 4 value vectors of size 4
                attn_out=2 * 8 * 8, mlp=2 * 3 * 8 * 12, lm_head=2 * 8 * 10)
    for k, v in want.items():
        assert f.parts[k] == v, k
    assert f.parts["embeddings"] == f.parts["router"] == f.parts["attn_softmax"] == 0
    assert f.total == 256 + 64 + 64 + 128 + 576 + 160 == 1248
    assert S.flops(cfg, 4, "train").total == 3 * 1248
    assert S.flops(cfg, 4, attention="causal").parts["attn_scores"] == 2 * 2 * 4 * 2.5  # (1+2+3+4)/4 keys
    assert S.flops(cfg, 4, embeddings=True).parts["embeddings"] == 2 * 8 * 10
    n = S.n_params(cfg, non_embedding=True)
    assert n == 8 * 16 + 8 * 8 + 3 * 8 * 12 + 2 * 8 + 8
    assert f.ratio_to_6n() == pytest.approx(1248 / (2 * n))


def test_flops_moe_counts_active_experts():
    cfg = dict(model_type="mixtral", vocab_size=100, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
               num_attention_heads=2, num_key_value_heads=2, num_local_experts=8, num_experts_per_tok=2,
               max_position_embeddings=32)
    f = S.flops(cfg, 8)
    assert f.parts["router"] == 2 * 2 * 16 * 8
    assert f.parts["mlp"] == 2 * (2 * 3 * 16 * 24 * 2)  # two layers, two active experts of 3 matrices
    dense = S.flops(dict(cfg, model_type="llama", num_local_experts=0), 8)
    assert f.parts["mlp"] == 2 * dense.parts["mlp"]


def _standard(cfg, tmp_path):
    model = llmc.Model.init(cfg, seed=0)
    model.save(tmp_path)
    return model, llmc.Model.load(tmp_path, attention="standard")


@pytest.mark.parametrize("cfg", [LLAMA, QWEN3, GPT2, BERT], ids=lambda c: c["model_type"])
def test_flops_forward_equal_the_products_llmc_runs(cfg, tmp_path):
    """With standard attention every product of a forward pass is a BLAS call; the C counter sees exactly the
    formula's FLOPs (the full T x T score matrix, as flops(attention="full") counts)."""
    _, model = _standard(cfg, tmp_path)
    T = 24
    ids = np.arange(T) % cfg["vocab_size"]
    with S.count_flops() as c:
        model.hidden_states(ids) if cfg["model_type"] == "bert" else model.logits(ids)
    assert c.calls > 0
    assert c.flops == S.flops(cfg, T).total * T


@pytest.mark.parametrize("cfg", [LLAMA, GPT2], ids=lambda c: c["model_type"])
def test_flops_train_equal_the_products_llmc_runs(cfg):
    """A training step: every linear product 3 times (forward, dx, dW); attention runs its forward in the flash
    kernel (not BLAS) and its backward as BLAS products that first recompute the scores, then dV, dP, dQ, dK."""
    model = llmc.Model.init(cfg, seed=0)
    B, T = 2, 16
    t = llmc.training.Trainer(model.config, model.state_dict(writable=True), B, T)
    x = np.random.default_rng(0).integers(0, cfg["vocab_size"], (B, T))
    with S.count_flops() as c:
        t.accumulate(x, x)
    fwd, train = S.flops(cfg, T), S.flops(cfg, T, "train")
    expected = (train.total - fwd.attention + fwd.parts["attn_scores"]) * B * T
    assert c.flops == expected
    # the model FLOPs proper (train.total) differ from what llmc runs by exactly that recomputation
    assert train.total * B * T - c.flops == (fwd.parts["attn_values"]) * B * T


def test_flop_counter_is_off_outside_the_block():
    a = np.ones((64, 64), np.float32)
    with S.count_flops() as c:
        llmc.matmul(a, a)
    assert c.flops == 2 * 64 ** 3 and c.calls == 1
    before = llmc._core.flop_counter_read()
    llmc.matmul(a, a)
    assert llmc._core.flop_counter_read() == before


def test_chinchilla_method_equals_exact_count_plus_its_extra_terms():
    """For the paper's architecture (GELU MLP, multi-head attention) the Appendix F formulas are flops() plus the
    softmax term, with the embedding matmul that the paper charges."""
    T = 32
    f = S.flops(GPT2, T, "train", embeddings=True)
    c = S.chinchilla_flops(T, 300, 64, 4, 2, 256)
    assert c.parts["attn_softmax"] == 3 * 2 * 3 * 4 * T  # train x layers x 3 H T^2 / T
    assert c.total - c.parts["attn_softmax"] == pytest.approx(f.total, rel=1e-12)


def test_chinchilla_table_a4_ratios():
    """The paper's Table A4: FLOPs per sequence (Appendix F, seq_len 2048, vocab 32k) over 6ND. The ratios come
    out with the embedding and logits terms left out and N counted the paper's way (relative-position weights,
    biases, untied output projection; input embeddings excluded)."""
    rows = [(73e6, 10, 640, 2560, 10, 1.03), (305e6, 20, 1024, 4096, 16, 1.10), (552e6, 24, 1280, 5120, 10, 1.08),
            (1.1e9, 26, 1792, 7168, 14, 1.04), (1.6e9, 28, 2048, 8192, 16, 1.03), (6.8e9, 40, 3584, 14336, 28, 0.99)]
    T, V = 2048, 32000
    for label, L, d, F, H, ratio in rows:
        n = L * (3 * d * d + 3 * d + d * d + 2 * d + d * d + d + 2 * d * F + F + d + 4 * d) + 2 * d + d * V
        assert n == pytest.approx(label, rel=0.1)
        f = S.chinchilla_flops(T, V, d, H, L, F, embeddings=False, logits=False)
        assert round(f.total / (6 * n), 2) == ratio, (label, f.total / (6 * n))


# ------------------------------------------------------------------------------------------------ the law
@pytest.mark.parametrize("law", [S.HOFFMANN, S.BESIROGLU], ids=lambda l: l.name)
@pytest.mark.parametrize("C", [1e18, 1e21, 5.76e23, 1e26])
def test_compute_optimal_closed_form_and_brute_force(law, C):
    o = S.compute_optimal(C, law=law)
    s = law.alpha + law.beta
    G = (law.alpha * law.A / (law.beta * law.B)) ** (1 / s)
    assert o.n_params == pytest.approx(G * (C / 6) ** (law.beta / s), rel=1e-12)
    assert o.tokens == pytest.approx((C / 6) ** (law.alpha / s) / G, rel=1e-12)
    assert 6 * o.n_params * o.tokens == pytest.approx(C, rel=1e-12)
    # brute force: the loss along C = 6ND on a fine grid of N
    N = np.geomspace(o.n_params / 100, o.n_params * 100, 400001)
    L = law.loss(N, C / (6 * N))
    i = int(np.argmin(L))
    assert N[i] == pytest.approx(o.n_params, rel=1e-4)
    assert L[i] == pytest.approx(o.loss, rel=1e-12, abs=1e-12)
    assert o.loss <= L.min() + 1e-12
    # at the optimum the reducible terms stand in the ratio beta : alpha
    assert (law.A / o.n_params ** law.alpha) / (law.B / o.tokens ** law.beta) == pytest.approx(law.beta / law.alpha)
    # the inverses land on the same optimum
    assert S.optimal_for_params(o.n_params, law).compute == pytest.approx(C, rel=1e-9)
    assert S.optimal_for_tokens(o.tokens, law).compute == pytest.approx(C, rel=1e-9)


def test_table3_rows():
    """Chinchilla Table 3 (Approach 1): parameters, FLOPs, tokens. The ~20 tokens/parameter rule gives each row's
    model size within 4.5% (the table drifts from 20.0 to 21.6 tokens/parameter) and C = 6ND within rounding."""
    rows = [(400e6, 1.92e19, 8.0e9), (1e9, 1.21e20, 20.2e9), (10e9, 1.23e22, 205.1e9), (67e9, 5.76e23, 1.5e12),
            (175e9, 3.85e24, 3.7e12), (280e9, 9.90e24, 5.9e12), (520e9, 3.43e25, 11.0e12), (1e12, 1.27e26, 21.2e12),
            (10e12, 1.30e28, 216.2e12)]
    for N, C, D in rows:
        o = S.chinchilla_optimal(C)
        assert o.n_params == pytest.approx(N, rel=0.045), N
        assert o.tokens_per_param == pytest.approx(20.0)
        assert 6 * N * D == pytest.approx(C, rel=0.05)  # the table's own rows are C = 6ND (67B: 5%, rounded 1.5T)
        # the Besiroglu et al. refit agrees with Approach 1 to within 25% over 4 orders of magnitude of N
        assert S.compute_optimal(C, "besiroglu").n_params == pytest.approx(N, rel=0.25)
    # the first rows within the table's rounding
    assert f"{S.chinchilla_optimal(1.92e19).n_params / 1e6:.0f}" == "400"
    assert f"{S.chinchilla_optimal(1.92e19).tokens / 1e9:.1f}" == "8.0"
    assert f"{S.chinchilla_optimal(1.21e20).n_params / 1e9:.0f}" == "1"
    assert f"{S.chinchilla_optimal(1.23e22).n_params / 1e9:.0f}" == "10"
    # Appendix D.4: "From our approach 1, we estimate a 2.86 billion parameter model should be optimal" at 1e21
    assert S.chinchilla_optimal(1e21).n_params == pytest.approx(2.86e9, rel=0.015)
    assert S.compute_optimal(1e21, "besiroglu").n_params == pytest.approx(2.86e9, rel=0.03)


def test_hoffmann_law_values():
    assert S.HOFFMANN.loss(70e9, 1.4e12) == pytest.approx(1.69 + 406.4 / 70e9 ** 0.34 + 410.7 / 1.4e12 ** 0.28)
    o = S.compute_optimal(5.76e23, "hoffmann")  # the exponents a = beta/(alpha+beta) = 0.45 of the rounded fit
    o2 = S.compute_optimal(5.76e25, "hoffmann")
    assert math.log(o2.n_params / o.n_params, 100) == pytest.approx(0.28 / 0.62)


# ------------------------------------------------------------------------------------------------ fitting
def test_fit_chinchilla_recovers_known_law():
    pytest.importorskip("scipy")
    true = S.ChinchillaLaw(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.36)
    rng = np.random.default_rng(0)
    N = np.repeat(np.geomspace(1e7, 3e9, 8), 6)
    D = np.tile(np.geomspace(1e8, 1e11, 6), 8)
    L = true.loss(N, D) * np.exp(rng.normal(0, 0.002, N.size))  # 0.2% noise
    fit = S.fit_chinchilla(N, D, L, starts=16, bootstrap=10, seed=1)
    assert fit.E == pytest.approx(1.8, abs=0.05)
    assert fit.alpha == pytest.approx(0.34, abs=0.03)
    assert fit.beta == pytest.approx(0.36, abs=0.03)
    pred = fit(N, D)
    assert np.max(np.abs(np.log(pred / true.loss(N, D)))) < 0.004
    for k in ("E", "A", "B", "alpha", "beta"):
        lo, hi = fit.intervals[k]
        assert lo <= hi
    assert fit.intervals["alpha"][0] < 0.34 + 0.03 and fit.intervals["alpha"][1] > 0.34 - 0.03
    # the fitted law gives a compute optimum near the true one
    assert S.compute_optimal(1e21, fit).n_params == pytest.approx(S.compute_optimal(1e21, true).n_params, rel=0.3)


def test_fit_power_law_recovers_known_law():
    pytest.importorskip("scipy")
    rng = np.random.default_rng(0)
    x = np.geomspace(1e15, 1e21, 20)
    y = (2.5 * 1e6 * x ** -0.3 + 1.7) * np.exp(rng.normal(0, 0.001, x.size))
    fit = S.fit_power_law(x, y, bootstrap=10)
    assert fit.b == pytest.approx(0.3, abs=0.03)
    assert fit.c == pytest.approx(1.7, abs=0.05)
    assert fit.intervals["b"][0] <= fit.b <= fit.intervals["b"][1]
    y0 = 30.0 * x ** -0.05
    f0 = S.fit_power_law(x, y0, offset=False)
    assert (f0.a, f0.b, f0.c) == (pytest.approx(30.0, rel=1e-6), pytest.approx(0.05, rel=1e-6), 0.0)


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_input():
    for C in (0, -1e21, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            S.compute_optimal(C)
        with pytest.raises(ValueError):
            S.chinchilla_optimal(C)
    with pytest.raises(TypeError):
        S.compute_optimal("a lot")
    with pytest.raises(ValueError, match="law"):
        S.compute_optimal(1e21, law="kaplan")
    with pytest.raises(ValueError):
        S.optimal_for_params(-5)
    with pytest.raises(ValueError):
        S.HOFFMANN.loss(-1, 1e9)
    with pytest.raises(ValueError, match="seq_len"):
        S.flops(LLAMA, 0)
    with pytest.raises(ValueError, match="kind"):
        S.flops(LLAMA, 8, kind="backward")
    with pytest.raises(ValueError, match="hidden_size"):
        S.flops(dict(LLAMA, hidden_size=-64), 8)
    with pytest.raises(ValueError, match="model_type"):
        S.n_params(dict(model_type="t5"))
    with pytest.raises(TypeError):
        S.n_params([1, 2, 3])
    with pytest.raises(ValueError, match="at least 5"):
        S.fit_chinchilla([1e6, 1e7], [1e9, 1e9], [3.0, 2.9])
    with pytest.raises(ValueError, match="at least 4"):
        S.fit_power_law([1, 2, 3], [3, 2, 1])
    with pytest.raises(ValueError, match="positive"):
        S.fit_chinchilla([1e6, -1e7, 1e8, 1e9, 1e6], [1e9] * 5, [3.0] * 5)
    with pytest.raises(ValueError, match="differ"):
        S.fit_power_law([1, 2, 3, 4], [4, 3, 2, 1, 0.5])


def test_cli_scaling(capsys):
    from llmc.cli import main

    assert main(["scaling", "--compute", "1e21", "--config", "default", "--seq-len", "256"]) == 0
    out = capsys.readouterr().out
    assert "hoffmann" in out and "besiroglu" in out and "1.82B" in out and "2.89B" in out and "mlp" in out
    assert main(["scaling", "--params", "70e9", "--tokens", "1.4e12", "--law", "besiroglu"]) == 0
    assert "5.88e+23" in capsys.readouterr().out
    assert main(["scaling", "--compute", "0"]) == 2
    assert "positive" in capsys.readouterr().err
    assert main(["scaling"]) == 2
