"""llmc.distributed on a local Ray cluster (ray.init(num_cpus=2)) against the single-process results.

The oracle is llmc's own single-process path (llmc.perplexity, model.embed, model.generate), which the other test
files check against transformers / NumPy: what is tested here is that sharding, retries and the reduction change
nothing, so perplexity, NLLs and tokens must be bit-identical (actors and reference both run 1 thread: a different
thread count rounds differently); embeddings too where the batch the model packs is the same, else within the
batched-inference tolerance (1e-5). Needs Ray (`pip install "llmc[ray]"`); skips without it.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import llmc

ROOT = str(Path(llmc.__file__).resolve().parent.parent)
CTX = 64


@pytest.fixture(scope="module")
def ray(tmp_path_factory):
    if any(s in os.environ.get("LD_PRELOAD", "") for s in ("libasan", "libtsan")):
        # raylet / gcs_server would inherit the sanitizer runtime; these tests add no C code for the sanitizers to check
        pytest.skip("a sanitizer runtime is preloaded (LD_PRELOAD): Ray's own binaries are not started under it")
    ray = pytest.importorskip("ray", reason='Ray is not installed (the "ray" and "test" extras bring it)')
    # the workers import the same llmc as this test; 1 CPU-thread each; a small object store (the default is 30% of RAM)
    sigterm = signal.getsignal(signal.SIGTERM)  # ray.init installs its own SIGTERM handler and leaves it
    # Ray puts the driver's working directory first on its workers' sys.path: from the repository root, the unbuilt
    # source tree would shadow the pip-installed llmc (CI). The cluster is started from an empty directory.
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray_cwd"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Ray's note about a future accelerator-variable default
        try:
            ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}})
        except BaseException:
            os.chdir(cwd)
            raise
    try:
        yield ray
    finally:
        ray.shutdown()  # stops the raylet, GCS and every worker this cluster started
        signal.signal(signal.SIGTERM, sigterm)
        os.chdir(cwd)


@pytest.fixture(scope="module")
def model():
    return llmc.load_default()


@pytest.fixture(scope="module")
def pool(ray, model):
    from llmc.distributed import ModelPool

    with ModelPool(model.path, num_actors=2, num_cpus=0.5) as p:  # half a CPU each: the other tests' pools fit too
        yield p


@pytest.fixture(scope="module")
def text():
    return "\n".join(llmc.data.kjv_lines("heldout")[:40])


@pytest.fixture
def one_thread():
    n = llmc.get_num_threads()
    llmc.set_num_threads(1)  # the actors' thread count: the reference must round the same way
    yield
    llmc.set_num_threads(n)


@pytest.mark.parametrize("method", ["chunks", "sliding"])
def test_perplexity_of_a_text_is_exact(pool, model, text, method, one_thread):
    ref = llmc.perplexity(model, text, context_length=CTX, method=method, progress=False)
    got = pool.perplexity(text, context_length=CTX, method=method, shard_size=3, return_nll=True, progress=False)
    assert got.windows == ref.windows and got.windows >= 8  # several shards on both actors
    assert got.ppl == ref.ppl  # exact: summed NLL / token count, reduced with fsum on both sides
    assert got.n_tokens == ref.n_tokens and got.nll_sum == ref.nll_sum
    np.testing.assert_array_equal(got.nll[0], ref.nll)
    np.testing.assert_array_equal(got.positions[0], ref.positions)
    assert got.stride == ref.stride


def test_perplexity_of_documents(pool, model, text, one_thread):
    lines = llmc.data.kjv_lines("heldout")[:30]
    docs = [" ".join(lines[i: i + 3]) for i in range(0, 30, 3)] + [model.tokenizer.encode(text)[:100], [7], []]
    ref = llmc.perplexity(model, texts=docs, context_length=32, stride=16, batch_size=1, progress=False)
    got = pool.perplexity(docs, context_length=32, stride=16, shard_size=2, return_nll=True, progress=False)
    assert got.ppl == ref.ppl and got.n_tokens == ref.n_tokens and got.nll_sum == ref.nll_sum
    np.testing.assert_array_equal(got.doc_ppl, ref.text_ppl)  # the 1-token document: NaN on both sides
    np.testing.assert_array_equal(np.concatenate(got.nll), ref.nll)
    np.testing.assert_array_equal(got.doc_tokens, np.bincount(ref.text_index, minlength=len(docs)))
    alone = llmc.perplexity(model, docs[3], context_length=32, stride=16, progress=False)  # texts= scores each alone
    assert got.doc_ppl[3] == alone.ppl
    np.testing.assert_array_equal(got.nll[3], alone.nll)


def test_perplexity_input_errors(pool):
    with pytest.raises(ValueError, match="need at least 2 tokens"):
        pool.perplexity([[4], [5]], context_length=CTX, progress=False)
    with pytest.raises(ValueError, match="one full chunk"):
        pool.perplexity([1, 2, 3, 4, 5], context_length=CTX, method="chunks", progress=False)
    with pytest.raises(ValueError, match="exceeds the model's context window"):
        pool.perplexity([1, 2, 3], context_length=10_000, progress=False)
    with pytest.raises(ValueError, match="method"):
        pool.perplexity([1, 2, 3], method="windows", progress=False)
    with pytest.raises(TypeError, match="document 0"):
        pool.perplexity([1.5, [2, 3]], progress=False)
    with pytest.raises(ValueError, match="shard_size"):
        pool.perplexity([1, 2, 3], shard_size=0, progress=False)
    # an error inside an actor comes back with its own type, and is not retried
    with pytest.raises(ValueError):
        pool.perplexity([1, 2, 10**6], context_length=CTX, progress=False)
    assert pool.retries == 0


def test_embeddings_in_input_order(pool, model, one_thread):
    texts = llmc.data.kjv_lines("heldout")[:23]
    got = pool.embed(texts, shard_size=4, progress=False)
    # each shard is one batched prefill in its actor: bit-identical to the same shards in this process; the whole
    # list in one batch rounds each row's products a little differently (OpenBLAS rounds a row by its place in the
    # product tile), within 1e-5
    np.testing.assert_array_equal(got, np.concatenate([model.embed(texts[i: i + 4]) for i in range(0, 23, 4)]))
    np.testing.assert_allclose(got, model.embed(texts), atol=1e-5, rtol=0)
    ids = [model.tokenizer.encode(t)[:12] for t in texts[:5]]
    np.testing.assert_allclose(pool.embed(ids, pooling="last", normalize=False, progress=False),
                               model.embed(ids, pooling="last", normalize=False), atol=1e-5, rtol=0)
    seen = sorted(i for i, _ in pool.iter_embed(texts, shard_size=5, progress=False))
    assert seen == list(range(len(texts)))


def test_generation_in_input_order(pool, model, one_thread):
    prompts = [line[:40] for line in llmc.data.kjv_lines("heldout")[:7]]
    assert pool.generate(prompts, 6, temperature=0, shard_size=2, progress=False) == \
        model.generate(prompts, 6, temperature=0)
    ids = [model.tokenizer.encode(p) for p in prompts[:5]]
    # prompt i samples with seed 7 + i in one process's list; the shards keep that numbering
    assert pool.generate(ids, 5, temperature=0.9, top_k=20, seed=7, shard_size=2, progress=False) == \
        model.generate(ids, 5, temperature=0.9, top_k=20, seed=7)
    with pytest.raises(ValueError, match="stream"):
        pool.generate(prompts, 4, stream=True)
    with pytest.raises(TypeError, match="list of prompts"):
        pool.generate("one prompt", 4)


def test_progress_callback(pool, text):
    calls = []
    pool.perplexity(text, context_length=CTX, method="chunks", shard_size=2,
                    progress=lambda done, total: calls.append((done, total)))
    total = calls[0][1]
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def _slow_factory(path: str, delay: float):
    """A factory (run in each actor) for the model at `path` whose logits take `delay` s more: a shard then takes
    long enough that killing its actor always lands while the actor holds work."""
    def make():
        import time

        import llmc

        class Slow(llmc.Model):
            def logits(self, ids, *args, **kwargs):
                time.sleep(delay)
                return super().logits(ids, *args, **kwargs)

        return Slow.load(path)

    return make


def test_killed_actor_shard_is_retried(ray, model, text, one_thread):
    from llmc.distributed import ModelPool

    ref = llmc.perplexity(model, text, context_length=CTX, method="chunks", progress=False)
    with ModelPool(_slow_factory(str(model.path), 0.03), num_actors=2, num_cpus=0.5) as pool:
        victim = pool.actors[0]
        killed = []

        def kill_first_actor(done, total):
            if done > 0 and not killed:  # mid-run: the victim holds one or two shards now
                ray.kill(victim)
                killed.append(done)

        got = pool.perplexity(text, context_length=CTX, method="chunks", shard_size=2, return_nll=True,
                              progress=kill_first_actor)
        assert killed and killed[0] < got.windows
        assert got.retries >= 1  # the victim's shards ran again elsewhere
        assert got.ppl == ref.ppl  # complete and exact
        np.testing.assert_array_equal(got.nll[0], ref.nll)
        assert pool.actors[0] is not victim  # the slot got a new actor (loading the model in the background)


def test_retries_are_bounded(ray, model, text):
    from llmc.distributed import ModelPool, ShardFailedError

    with ModelPool(_slow_factory(str(model.path), 0.03), num_actors=1, num_cpus=0.5, max_retries=0) as pool:
        victim = pool.actors[0]

        def kill(done, total):
            if done > 0:
                ray.kill(victim)

        with pytest.raises(ShardFailedError, match=r"failed 1 times \(max_retries=0\)"):
            pool.perplexity(text, context_length=CTX, method="chunks", shard_size=2, progress=kill)


def test_gguf_file_and_load_errors(ray, model, text, tmp_path, one_thread):
    from llmc.distributed import ModelPool

    path = tmp_path / "tiny.gguf"  # random weights of the default model's shape, no tokenizer: ids in
    llmc.Model.init(model.config, seed=1).save(path, format="gguf", dtype="q8_0")
    local = llmc.Model.load(path)
    ids = model.tokenizer.encode(text)
    ref = llmc.perplexity(local, ids, context_length=CTX, method="chunks", progress=False)
    with ModelPool(local, num_actors=1, num_cpus=0.5) as pool:  # an llmc.Model: its file is what the actor loads
        assert pool.info[0]["weight_types"] == local.weight_types()
        assert pool.perplexity(ids, context_length=CTX, method="chunks", progress=False).ppl == ref.ppl
        with pytest.raises(ValueError, match="no tokenizer"):
            pool.perplexity(text, progress=False)
    with pytest.raises(ValueError, match="closed"):
        pool.perplexity(ids, progress=False)
    with pytest.raises(FileNotFoundError):  # raised by Model.load inside the actor, with its own type
        ModelPool(str(tmp_path / "missing"), num_actors=1, num_cpus=0.5)
    with pytest.raises(FileNotFoundError, match="must be absolute"):
        ModelPool("relative/missing/model", num_actors=1)
    with pytest.raises(ValueError, match="has no files"):
        ModelPool(llmc.Model.init(dict(model.config)), num_actors=1)


def test_pool_argument_errors(ray, model):
    from llmc.distributed import ModelPool

    with pytest.raises(TypeError, match="threads must be an int"):
        ModelPool(model.path, threads="2")
    with pytest.raises(ValueError, match="num_actors must be >= 1"):
        ModelPool(model.path, num_actors=0)
    with pytest.raises(ValueError, match="unknown dtype"):
        ModelPool(model.path, dtype="q3_z")
    with pytest.raises(ValueError, match="num_cpus"):
        ModelPool(model.path, num_cpus=0)
    with pytest.raises(TypeError, match="model must be"):
        ModelPool(42)


def test_import_without_ray(tmp_path):
    """`import llmc` never imports Ray; without Ray a pool raises ImportError naming the extra."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "import llmc, llmc.distributed\n"
            "try:\n    llmc.distributed.ModelPool('x')\nexcept ImportError as e:\n    print('ERR', e)\n")
    # run outside the repository root: `python -c` puts the working directory first on sys.path
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ROOT}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert 'pip install "llmc[ray]"' in out.stdout
    out = subprocess.run([sys.executable, "-c", "import llmc, sys; print('ray' in sys.modules)"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT}, cwd=tmp_path)
    assert out.stdout.strip() == "False", out.stderr


def test_exact_partials_reduce_any_sharding():
    """The reduction itself (no Ray needed): fsum over every shard's partials == fsum over all values, bit for bit,
    for any cut, including values spread over 30 binary orders of magnitude."""
    from llmc.distributed import _exact_partials

    rng = np.random.default_rng(0)
    for _ in range(200):
        x = np.exp(rng.normal(0, 8, rng.integers(0, 400)))
        cuts = sorted(rng.integers(0, len(x) + 1, 5).tolist())
        parts = [p for a, b in zip([0] + cuts, cuts + [len(x)]) for p in _exact_partials(x[a:b])]
        assert math.fsum(parts) == math.fsum(x.tolist())
    assert _exact_partials(np.zeros(0)) == []
    assert math.isinf(math.fsum(_exact_partials(np.array([1.0, np.inf]))))
