"""Thread safety of every entry point the binding runs without the GIL.

Each test computes results one call at a time, then runs the same calls from several Python threads at once (a
barrier lines them up so they overlap) and requires identical results: bit-identical for deterministic calls, the
same tokens for seeded sampling. A shared mutable handle (Sampler, Session, Trainer) used by two threads at once
must raise RuntimeError, never race. CI also runs this file under ThreadSanitizer (.ci/run)."""
import threading

import numpy as np
import pytest

import llmc
from llmc import _core

N_THREADS = 4


def run_concurrently(fn, args_list):
    """fn(*args) for every args in args_list, all started together on their own threads; results in order."""
    barrier = threading.Barrier(len(args_list))
    out = [None] * len(args_list)
    errs = []

    def work(i, args):
        try:
            barrier.wait()
            out[i] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errs.append(e)

    ts = [threading.Thread(target=work, args=(i, a)) for i, a in enumerate(args_list)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        raise errs[0]
    return out


def same_concurrently(fn, args_list, reps=3):
    """The results of concurrent calls equal the sequential ones (compared with numpy's array_equal)."""
    expected = [fn(*a) for a in args_list]
    for _ in range(reps):
        got = run_concurrently(fn, args_list)
        for e, g in zip(expected, got):
            if isinstance(e, tuple):
                for ee, gg in zip(e, g):
                    np.testing.assert_array_equal(ee, gg)
            else:
                np.testing.assert_array_equal(e, g)


@pytest.fixture(scope="module")
def small_model():
    return llmc.Model.init(dict(model_type="llama", vocab_size=300, hidden_size=64, intermediate_size=96,
                                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                max_position_embeddings=128), seed=3)


def test_sampling_top_k_top_p_threads():
    # the bug: qsort's comparator read the logits through a global, so two threads sorted each other's arrays
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=5000).astype(np.float32) for _ in range(N_THREADS)]

    def draws(x, seed):
        return np.array([llmc.sample(x, temperature=0.9, top_k=200, top_p=0.9, seed=seed + i) for i in range(40)])

    same_concurrently(draws, [(logits[i], 100 * i) for i in range(N_THREADS)])

    def processed(x):
        return llmc.process_logits(x, top_k=50, top_p=0.8, min_p=0.01, repetition_penalty=1.2, history=[1, 2, 3])

    same_concurrently(processed, [(x,) for x in logits])


def test_generate_with_seeds_threads(small_model):
    def gen(seed):
        return np.array(small_model.generate([1, 2, 3], 12, temperature=0.9, top_k=20, top_p=0.9, seed=seed))

    same_concurrently(gen, [(s,) for s in range(N_THREADS)], reps=2)
    same_concurrently(lambda p: np.array(small_model.generate(p, 8, num_beams=3)),
                      [([5 + i, 6],) for i in range(N_THREADS)], reps=1)


def test_model_forward_and_sessions_threads(small_model):
    ids = [list(range(3 + i, 40 + i)) for i in range(N_THREADS)]
    same_concurrently(lambda x: small_model.logits(x), [(x,) for x in ids])
    same_concurrently(lambda x: small_model.logits(x, attention="standard"), [(x,) for x in ids])
    same_concurrently(lambda x: small_model.hidden_states(x), [(x,) for x in ids], reps=1)

    def decode(x):  # one session per thread: KV-cached decoding
        s = small_model.session()
        outs = [s.append(x[:10])]
        for t in x[10:20]:
            outs.append(s.append([t]))
        return np.stack(outs)

    same_concurrently(decode, [(x,) for x in ids])


def test_shared_handles_refuse_concurrent_use(small_model):
    # one Session/Sampler used from two threads at once: a RuntimeError, never a race on its buffers
    s = small_model.session()
    sampler = llmc.Sampler(5000, temperature=1.0, top_k=100, seed=0)
    x = np.random.default_rng(1).normal(size=5000).astype(np.float32)
    seen = {"session": 0, "sampler": 0}

    def hammer_session():
        for _ in range(30):
            try:
                s.reset()
                s.append(list(range(1, 60)))
            except RuntimeError as e:
                assert "another thread" in str(e)
                seen["session"] += 1

    def hammer_sampler():
        for _ in range(200):
            try:
                sampler(x)
            except RuntimeError as e:
                assert "another thread" in str(e)
                seen["sampler"] += 1

    run_concurrently(hammer_session, [()] * N_THREADS)
    run_concurrently(hammer_sampler, [()] * N_THREADS)
    # whether threads collided is up to the scheduler; what matters is no crash and a usable object afterwards
    s.reset()
    np.testing.assert_allclose(s.append([1, 2, 3]), small_model.logits([1, 2, 3])[-1], atol=1e-5)
    sampler.seed(0)
    assert 0 <= sampler(x)[0] < 5000


def test_ops_threads():
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(64, 300)).astype(np.float32) for _ in range(N_THREADS)]
    w = rng.normal(size=300).astype(np.float32)
    same_concurrently(llmc.softmax, [(x,) for x in xs])
    same_concurrently(lambda x: llmc.softmax(x, axis=0), [(x,) for x in xs])
    same_concurrently(llmc.log_softmax, [(x,) for x in xs])
    same_concurrently(llmc.hardmax, [(x,) for x in xs])
    same_concurrently(lambda x: llmc.cross_entropy(x, np.arange(64)), [(x,) for x in xs])
    same_concurrently(lambda x: llmc.layer_norm(x, w, w), [(x,) for x in xs])
    same_concurrently(lambda x: llmc.rms_norm(x, w), [(x,) for x in xs])
    same_concurrently(llmc.gelu, [(x,) for x in xs])
    same_concurrently(llmc.silu, [(x,) for x in xs])
    same_concurrently(lambda x: llmc.matmul(x, x.T), [(x,) for x in xs])
    same_concurrently(lambda x: llmc.embedding(x, np.arange(0, 64, 3)), [(x,) for x in xs])
    same_concurrently(lambda x: llmc.apply_rope(x.reshape(4, 16, 300)[..., :256], np.arange(16)), [(x,) for x in xs])
    same_concurrently(lambda n: llmc.sinusoidal_positions(n, 64), [(50 + i,) for i in range(N_THREADS)])
    q = [rng.normal(size=(1, 4, 48, 32)).astype(np.float32) for _ in range(N_THREADS)]
    for impl in ("standard", "flash"):
        same_concurrently(lambda a: llmc.attention(a, a, a, causal=True, impl=impl), [(a,) for a in q])


def test_backward_and_training_threads(small_model):
    rng = np.random.default_rng(3)
    inputs = [rng.integers(0, 300, size=(2, 16)) for _ in range(N_THREADS)]

    def loss_grads(inp):
        loss, g = llmc.loss_and_grads(small_model, inp, np.roll(inp, -1, axis=1))
        return (np.float64(loss),) + tuple(g[k] for k in sorted(g))

    same_concurrently(loss_grads, [(i,) for i in inputs], reps=1)

    x = [rng.normal(size=(32, 300)).astype(np.float32) for _ in range(N_THREADS)]
    w = rng.normal(size=300).astype(np.float32)
    same_concurrently(lambda a: _core.layer_norm_backward(a, a, w, 1e-5), [(a,) for a in x])
    same_concurrently(lambda a: _core.cross_entropy_backward(a, np.arange(32)), [(a,) for a in x])


def test_tokenizer_threads():
    text = ("In the beginning God created the heaven and the earth. And the earth was without form, and void; "
            "and darkness was upon the face of the deep. ") * 20
    tok = llmc.Tokenizer.train(text, 400, progress=False)
    texts = [text[i * 37:] + " ünïcødé 12345 " * (i + 1) for i in range(N_THREADS)]
    same_concurrently(lambda t: np.array(tok.encode(t)), [(t,) for t in texts])
    same_concurrently(lambda t: np.array(tok.encode_batch([t, t[::-1]], num_threads=2)[1]), [(t,) for t in texts])
    ids = tok.encode(text)
    same_concurrently(lambda k: tok.decode(ids[k:]), [(k,) for k in range(N_THREADS)])
    # training itself, several at once
    same_concurrently(lambda n: np.array([tok2 for tok2 in llmc.Tokenizer.train(text, n, progress=False)
                                          .encode(text[:200])]), [(300 + 10 * i,) for i in range(N_THREADS)], reps=1)


def test_file_readers_threads(tmp_path, small_model):
    small_model.save(tmp_path / "m")
    same_concurrently(lambda p: llmc.Model.load(p).logits([1, 2, 3]), [(tmp_path / "m",)] * N_THREADS, reps=1)
    doc = b'{"a": [1, 2.5, "x\\u00e9"], "b": {"c": null, "d": true}}' * 1
    same_concurrently(lambda d: repr(_core.json_parse(d)), [(doc,)] * N_THREADS)


def test_more_entry_points_threads(tmp_path, small_model):
    rng = np.random.default_rng(4)
    xs = [rng.normal(size=(8, 64)).astype(np.float32) for _ in range(N_THREADS)]
    for qt in ("q8_0", "q4_k"):  # quantize / dequantize / the typed matmul
        if hasattr(llmc, "quantize"):
            same_concurrently(lambda x: llmc.dequantize(llmc.quantize(np.tile(x, (1, 4)), qt), qt, (8, 256)),
                              [(x,) for x in xs])
    same_concurrently(lambda i: small_model.attention_weights([1, 2, 3, 4 + i], layer=1), [(i,) for i in range(4)])
    bert = llmc.Model.init(dict(model_type="bert", vocab_size=100, hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=4, intermediate_size=48, max_position_embeddings=32), seed=0)
    same_concurrently(lambda i: bert.embed([[1, 2, 3 + i], [4, 5]]), [(i,) for i in range(N_THREADS)])
    small_model.save(tmp_path / "m")
    st = str(tmp_path / "m" / "model.safetensors")
    name = sorted(_core.safetensors_info(st))[0]
    same_concurrently(lambda p: _core.safetensors_read(p, name), [(st,)] * N_THREADS)
    tok = llmc.Tokenizer.train("abc abd abe " * 50, 270, progress=False)
    tok.save(tmp_path / "t.json")
    data = (tmp_path / "t.json").read_bytes()
    same_concurrently(lambda d: np.array(llmc.Tokenizer.from_json_bytes(d).encode("abc abe")), [(data,)] * N_THREADS)

    def adam(seed):  # in-place AdamW on arrays of each thread's own
        r = np.random.default_rng(seed)
        p, g = r.normal(size=300).astype(np.float32), r.normal(size=300).astype(np.float32)
        m, v = np.zeros_like(p), np.zeros_like(p)
        for step in range(1, 4):
            _core.adamw_step(p, g, m, v, 1e-2, 0.9, 0.95, 1e-8, 0.1, step)
        return p, m, v

    same_concurrently(adam, [(s,) for s in range(N_THREADS)])


def test_import_sets_only_the_documented_wait_policy():
    """Importing llmc changes one environment variable, as documented: OMP_WAIT_POLICY=PASSIVE when it is unset
    (idle OpenMP threads sleep: spinning workers made 2-thread training 3-5x slower on a busy machine). A value the
    user set is kept (the opt-out), and nothing else in os.environ or the C-level environment changes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import ctypes, os, sys; before = dict(os.environ); import llmc; import llmc.model, llmc.tokenizer; "
            "after = dict(os.environ); want = sys.argv[1]; "
            "assert after.get('OMP_WAIT_POLICY') == want, after.get('OMP_WAIT_POLICY'); "
            "after.pop('OMP_WAIT_POLICY'); before.pop('OMP_WAIT_POLICY', None); "
            "assert after == before, set(after.items()) ^ set(before.items()); "
            "libc = ctypes.CDLL(None); libc.getenv.restype = ctypes.c_char_p; "
            "assert libc.getenv(b'OMP_WAIT_POLICY').decode() == want; "
            "bad = [k for k in ('GOMP_SPINCOUNT', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS') "
            "if libc.getenv(k.encode()) is not None]; assert not bad, bad")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "OPENBLAS_"))}
    env["PYTHONPATH"] = str(Path(llmc.__file__).resolve().parent.parent)
    for user, want in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        e = dict(env) if user is None else {**env, "OMP_WAIT_POLICY": user}
        r = subprocess.run([sys.executable, "-c", code, want], env=e, capture_output=True, text=True, timeout=120,
                           cwd=Path(llmc.__file__).resolve().parent.parent.parent)
        assert r.returncode == 0, r.stderr


def test_threaded_blas_is_one_pool_and_deterministic_under_concurrency():
    """A large product is cut into chunks claimed by llmc's threads, each a single-threaded OpenBLAS call; should
    OpenBLAS itself ever thread, its jobs run on llmc's threads (the pinned wheel has the callback). The bits depend
    on how the product is cut (by the thread count only), so concurrent top-level products (threaded) and products
    made inside llmc's parallel regions (quantized prefill tiles: single-threaded) must give exactly the sequential
    results, and match float64 NumPy."""
    assert _core.blas_one_pool()
    rng = np.random.default_rng(5)
    mats = [(rng.standard_normal((129 + 16 * i, 301)).astype(np.float32),
             rng.standard_normal((301, 517)).astype(np.float32)) for i in range(N_THREADS)]
    w = rng.standard_normal((130, 256)).astype(np.float32)
    q = llmc.quantize(w, "q8_0")
    xs = [rng.standard_normal((40 + i, 256)).astype(np.float32) for i in range(N_THREADS)]
    old = llmc.get_num_threads()
    try:
        llmc.set_num_threads(2)
        for a, b in mats:
            np.testing.assert_allclose(llmc.matmul(a, b), a.astype(np.float64) @ b, rtol=1e-5, atol=1e-4)

        def both(a, b, x):
            return llmc.matmul(a, b), llmc.quant.matmul(x, q, "q8_0", path="tiles")

        same_concurrently(both, [(a, b, x) for (a, b), x in zip(mats, xs)])
    finally:
        llmc.set_num_threads(old)


def test_products_put_openblas_count_back_to_one():
    """threadpoolctl's threadpool_limits(user_api="blas") sets the thread count of every BLAS library in the
    process, llmc's OpenBLAS included. llmc's products are cut into single-threaded calls, so llmc_sgemm puts the
    count back to 1 (else every chunk would thread on extra threads of its own); results stay right."""
    import ctypes
    import os

    openblas = pytest.importorskip("scipy_openblas32")  # absent when llmc is built against a system OpenBLAS
    lib = ctypes.CDLL(os.path.join(openblas.get_lib_dir(), openblas.get_library(fullname=True)))
    get, set_ = lib.scipy_openblas_get_num_threads, lib.scipy_openblas_set_num_threads  # the wheel's "scipy_" prefix
    rng = np.random.default_rng(9)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 700)).astype(np.float32)
    old = llmc.get_num_threads()
    try:
        llmc.set_num_threads(2)
        want = llmc.matmul(a, b)
        set_(2)  # what threadpoolctl does
        got = llmc.matmul(a, b)
        assert get() == 1
        np.testing.assert_array_equal(got, want)
    finally:
        set_(1)
        llmc.set_num_threads(old)


# ---------------------------------------------------------------- decoding on one team per token (csrc/decode.c)
DECODE_CFGS = {
    # gpt2: F32 Conv1D weights read as (in, out); qwen3: per-head q/k norms, GQA; mistral: a window shorter than the
    # text, one key/value head
    "gpt2": dict(model_type="gpt2", vocab_size=1000, n_embd=128, n_layer=2, n_head=4, n_positions=96),
    "qwen3": dict(model_type="qwen3", vocab_size=1000, hidden_size=128, intermediate_size=352, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=96),
    "mistral": dict(model_type="mistral", vocab_size=1000, hidden_size=128, intermediate_size=256,
                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=96,
                    sliding_window=8),
}


def _decode_steps(m, attention, n_new=20, interventions=None):
    s = m.session(attention=attention, interventions=interventions)
    out = [s.append([1, 2, 3, 4, 5])]
    for _ in range(n_new):
        out.append(s.append([int(out[-1].argmax())]))
    return np.stack(out)


@pytest.mark.parametrize("dtype", [None, "q8_0"])
@pytest.mark.parametrize("name", sorted(DECODE_CFGS))
def test_decode_team_same_bits_at_any_thread_count(name, dtype):
    """One decoded token runs on one team of threads whose steps' chunks are claimed by whichever thread is free
    (csrc/decode.c, team.c). A chunk computes the same thing on any thread, so the logits are bit-identical at 1, 2
    and 3 threads and when four sessions decode at once (each with its own team), and to the general forward
    (blocks.c, which an intervention routes decoding through: a zero steering vector changes nothing); fp32 ones
    follow the full forward (1e-4)."""
    D = DECODE_CFGS[name].get("n_embd", DECODE_CFGS[name].get("hidden_size"))
    general = [llmc.Steer(layer=0, vector=np.zeros(D, np.float32), scale=1.0)]
    m = llmc.Model.init(DECODE_CFGS[name], seed=4)
    if dtype:
        m.quantize(dtype)
    old = llmc.get_num_threads()
    try:
        for attention in ("flash", "standard"):
            llmc.set_num_threads(1)
            one = _decode_steps(m, attention)
            np.testing.assert_array_equal(_decode_steps(m, attention, interventions=general), one)
            for n in (2, 3):
                llmc.set_num_threads(n)
                np.testing.assert_array_equal(_decode_steps(m, attention), one)
            llmc.set_num_threads(2)
            got = run_concurrently(_decode_steps, [(m, attention)] * N_THREADS)
            for g in got:
                np.testing.assert_array_equal(g, one)
        if dtype is None:  # (quantized decoding multiplies 8-bit activations, the full forward fp32 ones)
            ids = [1, 2, 3, 4, 5] + [int(r.argmax()) for r in one[:-1]]
            np.testing.assert_allclose(one, m.logits(ids)[4:], rtol=0, atol=1e-4)
    finally:
        llmc.set_num_threads(old)


def test_omp_num_threads_is_the_default_thread_count():
    """llmc's thread count defaults to OMP_NUM_THREADS as it is when llmc loads (its first entry; a value that is not
    a positive count is ignored), else to every core; set_num_threads overrides it. torch reads it the same way."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import os, sys, llmc; n = llmc.get_num_threads(); llmc.set_num_threads(5); "
            "assert llmc.get_num_threads() == 5; print(n, os.cpu_count(), len(os.sched_getaffinity(0)))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    env["PYTHONPATH"] = str(Path(llmc.__file__).resolve().parent.parent)
    cases = [("3", 3), ("4,2", 4), ("1", 1), ("many", None), ("0", None), (None, None)]
    for value, want in cases:
        e = dict(env) if value is None else {**env, "OMP_NUM_THREADS": value}
        r = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=120,
                           cwd=Path(llmc.__file__).resolve().parent.parent.parent)
        assert r.returncode == 0, r.stderr
        n, _, usable = (int(v) for v in r.stdout.split())
        assert n == (want if want is not None else usable), (value, r.stdout)
