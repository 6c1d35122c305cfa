"""Corpus-scale inference on a Ray cluster: perplexity, embeddings and generation, sharded across actors.

    from llmc.distributed import ModelPool
    with ModelPool("/shared/models/qwen3-0.6b", threads=4) as pool:   # one actor per 4 CPUs of the cluster
        r = pool.perplexity(open("wiki.test.raw").read(), context_length=512, method="chunks")
        E = pool.embed(sentences)                  # (N, d_model), rows in input order
        outs = pool.generate(prompts, 64)          # one result per prompt, in input order

    llmc.distributed.perplexity("/shared/models/m.gguf", documents)   # the same, with a pool for one call

Each actor is a Ray worker process that loads the model **once**, from a path every node can read (a checkpoint
folder or a .gguf file on shared storage, or a zero-argument factory that builds it): weights never travel through
Ray's object store, only token ids, texts and results do. The input is cut into shards (consecutive windows, texts
or prompts); each actor keeps two shards queued so it never waits for the driver; results stream back as shards
finish (the progress bar and ``iter_embed`` / ``iter_generate`` see them at once) and are put back in input order.

Failures: when an actor dies (its process or node is lost, it is ``ray.kill``-ed, Ray's memory monitor kills it) the
shards it held are queued again and run on another actor, and a replacement actor is started for it; a shard is
tried at most ``1 + max_retries`` times, after which ``ShardFailedError`` says which items it held and why it
failed. An exception raised by llmc itself (bad input: ValueError, TypeError, ...) is not retried: it is raised
again in the driver as the same exception type.

Exactness. Every item is computed by the same code as in one process (``model.logits`` per window, ``model.embed``,
``model.generate`` of a list), so on the same kernels (same CPU features and thread count) every per-token NLL is
bit-identical to the single-process result, and the generations are those of ``model.generate(prompts)`` in one
process (prompt i keeps its seed, seed + i, whatever its shard). Embeddings are bit-identical to ``model.embed`` of
the same shard; ``model.embed`` packs the texts it is given into batches, so the whole list at once groups them
differently and rounds differently (~1e-7; the batched-inference tolerance is 1e-5). Corpus perplexity is reduced
from summed NLL and token counts: each shard returns, per window, floats whose exact sum is the exact sum of the
window's NLLs (``math.fsum`` residues), and the driver adds them with ``math.fsum``: the correctly rounded total,
whatever the sharding and whatever order shards finish in. ``llmc.perplexity`` computes its mean with ``math.fsum``
too, so ``ModelPool.perplexity(ids).ppl == llmc.perplexity(model, ids).ppl`` exactly, for both methods.

Shard boundaries. Shards are cut *between windows of the single-process schedule*, never inside a text:

- ``method="chunks"`` (llama.cpp): chunks are disjoint, so a shard is a run of whole chunks.
- ``method="sliding"`` (Hugging Face): the windows (``context_length`` tokens, moved by ``stride``) are planned on the
  driver over the whole text exactly as ``llmc.perplexity`` plans them, and each window travels with its own
  context: the ``context_length - stride`` tokens it shares with the previous window are sent again with it and are
  only context (unscored), as in one process. A shard boundary therefore changes nothing: no token is lost or scored
  twice, and every token is scored with the same context it has in one process; the cost is the overlap tokens sent
  to both shards' actors (and computed twice, as in one process).

A list of documents is scored document by document (each has its own windows, no context crosses documents); the
corpus value is the fsum of every document's NLL over the total token count. Pass one string (or one id sequence)
for llama.cpp's convention of one concatenated corpus.

Ray is an optional dependency: ``pip install "llmc[ray]"``. ``import llmc.distributed`` works without it; making a
pool raises ImportError naming the extra. See docs/distributed.md for running on a real cluster.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = ["ModelPool", "CorpusPerplexity", "ShardFailedError", "perplexity", "embed", "generate"]

_INFLIGHT_PER_ACTOR = 2  # one running, one waiting in the actor's queue: the actor never idles on a round trip


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover (depends on the environment)
        raise ImportError('llmc.distributed needs Ray, an optional dependency: pip install "llmc[ray]"') from e
    return ray


class ShardFailedError(RuntimeError):
    """A shard could not be computed: every actor that tried it died (or no actor was left)."""


# ------------------------------------------------------------------------------------------------------------ results
@dataclass
class CorpusPerplexity:
    """Perplexity of a corpus, reduced from summed NLL and token counts.

    ``ppl = exp(nll_sum / n_tokens)``; ``nll_sum`` is the correctly rounded sum (``math.fsum``) of every scored token's
    negative log-likelihood (nats), so it does not depend on how the corpus was sharded. ``doc_nll_sum`` /
    ``doc_tokens`` are the same per document (one entry for a single text). ``nll`` / ``positions`` are the
    per-token values per document, as ``llmc.perplexity`` returns them, when ``return_nll=True`` (else None).
    ``retries`` counts shards that were run again after an actor died."""
    ppl: float
    nll_sum: float
    n_tokens: int
    doc_nll_sum: np.ndarray
    doc_tokens: np.ndarray
    method: str
    context_length: int
    stride: int | None
    windows: int
    retries: int = 0
    nll: list | None = None
    positions: list | None = None

    @property
    def mean_nll(self) -> float:
        return self.nll_sum / self.n_tokens

    @property
    def doc_ppl(self) -> np.ndarray:
        """Each document's own perplexity, (n_docs,) float64 (math.exp, as llmc.perplexity: the same bits); NaN for
        a document too short for one window."""
        return np.array([math.exp(s / n) if n else math.nan
                         for s, n in zip(self.doc_nll_sum.tolist(), self.doc_tokens.tolist())])

    def __repr__(self) -> str:
        return (f"CorpusPerplexity(ppl={self.ppl:.4f}, mean_nll={self.mean_nll:.4f}, n_tokens={self.n_tokens}, "
                f"documents={len(self.doc_tokens)}, method={self.method!r}, context_length={self.context_length}, "
                f"stride={self.stride}, windows={self.windows}, retries={self.retries})")


def _exact_partials(x: np.ndarray) -> list[float]:
    """Floats whose exact (real-number) sum equals the exact sum of ``x``.

    Each step adds ``math.fsum`` of x minus the partials so far: the correctly rounded residual. Every float64 is a
    multiple of 2**-1074, so the residual shrinks by ~2**-53 per step and reaches exactly 0 (2-3 steps for NLLs).
    ``math.fsum`` over the partials of many shards is then the correctly rounded sum of all their values."""
    vals = x.tolist()
    if not all(map(math.isfinite, vals)):
        return [math.fsum(vals)]  # inf / nan: the total is not finite either, nothing to keep exact
    out: list[float] = []
    for _ in range(64):  # float64 spans ~2100 bits: at most ~40 steps of 53 bits
        r = math.fsum(vals + [-p for p in out])
        if r == 0.0:
            break
        out.append(r)
    return out


# ------------------------------------------------------------------------------------------------------------- actor
class _Worker:
    """The body of one Ray actor: one model, loaded once, and the per-shard work. Runs in the actor's process."""

    def __init__(self, spec: tuple, attention: str, threads: int | None):
        self._error: BaseException | None = None
        self.model = None
        try:
            import llmc

            if threads:
                llmc.set_num_threads(int(threads))
            kind, value, dtype = spec
            if kind == "path":
                self.model = llmc.Model.load(value, attention=attention, dtype=dtype)
            else:
                self.model = value()
                if not isinstance(self.model, llmc.Model):
                    raise TypeError(f"the model factory returned {type(self.model).__name__}, not an llmc.Model")
        except Exception as e:  # reported by ready() with its own type, so the driver raises what load raised
            self._error = e

    def _model(self):
        if self._error is not None:  # the load failed: every call says why, with the load's own exception type
            raise self._error
        return self.model

    def ready(self) -> dict:
        import socket

        import llmc

        m = self._model()
        return dict(pid=os.getpid(), host=socket.gethostname(), threads=llmc.get_num_threads(),
                    simd=llmc.simd_info()["active"], context_length=m.context_length, vocab_size=m.vocab_size,
                    d_model=m.d_model, arch=m.arch, has_tokenizer=m.tokenizer is not None,
                    weight_types=m.weight_types())

    def pid(self) -> int:
        return os.getpid()

    def tokenize(self, texts: list) -> list:
        """Token ids of each text, as llmc.perplexity encodes a text (no special tokens)."""
        tok = self._model().tokenizer
        return [np.asarray(tok.encode(t), np.int64) for t in texts]

    def score(self, windows: list, batch_size: int, keep_nll: bool) -> list:
        """Per window (ids, n_context): (exact partials of its NLL sum, scored tokens, NLLs or None).
        The same computation as llmc.perplexity's loop: logits of the window, the tokens after n_context scored."""
        from .perplexity import _token_nll

        m = self._model()
        out = []
        for i in range(0, len(windows), batch_size):
            group = windows[i: i + batch_size]
            seqs = [w for w, _ in group]
            all_logits = m.logits_batch(seqs) if len(seqs) > 1 else [m.logits(s) for s in seqs]
            for (seq, n_ctx), logits in zip(group, all_logits):
                logits = np.asarray(logits)[: len(seq)]
                rows = np.arange(n_ctx - 1, len(seq) - 1)  # logits at row j predict token j + 1
                nll = _token_nll(logits[rows], seq[rows + 1]) if len(rows) else np.zeros(0)
                out.append((_exact_partials(nll), len(nll), nll if keep_nll else None))
        return out

    def embed(self, items: list, kwargs: dict) -> np.ndarray:
        return self._model().embed(items, **kwargs)

    def generate(self, shard: tuple, max_new_tokens: int, kwargs: dict) -> list:
        """model.generate of the shard's prompts as one list (continuous batching in one process: llmc/batch.py).
        A list seeds prompt j with seed + j; this shard starts at prompt `start` of the whole list, so its prompt j
        gets seed + start + j: the seed it has in model.generate(whole list)."""
        start, prompts = shard
        kw = dict(kwargs)
        if kw.get("seed") is not None:
            kw["seed"] = int(kw["seed"]) + start
        return self._model().generate(list(prompts), max_new_tokens, **kw)


# ---------------------------------------------------------------------------------------------------------- progress
def _bar(p: float, width: int = 30) -> str:
    n = int(round(p * width))
    return "#" * n + "." * (width - n)


def _progress_fn(progress, label: str, unit: str) -> Callable[[int, int], None] | None:
    """progress: a callable(done, total), True (a bar on stderr, llmc quantize's style), False, or None (a bar when
    stderr is a terminal)."""
    if callable(progress):
        return progress
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        dt = time.perf_counter() - start
        end = "\n" if done == total else ""
        print(f"\r{label} [{_bar(done / max(total, 1))}] {done}/{total} {unit} {dt:.1f} s "
              f"({done / dt if dt > 0 else 0.0:.1f} {unit}/s)", end=end, file=sys.stderr, flush=True)

    return show


# -------------------------------------------------------------------------------------------------------------- pool
def _check_int(name: str, v, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")
    return int(v)


def _shard_size(n_items: int, n_actors: int, shard_size: int | None) -> int:
    if shard_size is None:  # ~4 shards per actor: balances uneven shards, bounds what a failure costs
        return max(1, math.ceil(n_items / (4 * max(n_actors, 1))))
    return _check_int("shard_size", shard_size, 1)


class ModelPool:
    """Ray actors that each hold one copy of a model; corpus perplexity, embeddings and generation across them.

    Args:
        model: where each actor gets the model: a checkpoint folder or ``.gguf`` file (a path every node can read:
            shared storage, or the same path on every node), an ``llmc.Model`` loaded from such a path (its path
            and dtype recipe are used; the actors load the files, so in-memory edits are not seen), or a picklable
            zero-argument callable returning an ``llmc.Model`` (run once in each actor).
        num_actors: how many actors (default: the cluster's CPUs // threads, at least 1).
        threads: llmc threads per actor (``llmc.set_num_threads``). Results are bit-identical to one process only
            at the same thread count (a different split of the work rounds differently, ~1e-6).
        num_cpus: Ray CPUs each actor reserves (default: threads; a fraction packs more actors per CPU).
        dtype: ``Model.load(dtype=...)`` in each actor (None: the checkpoint's own types).
        attention: "flash" or "standard".
        max_retries: how many times a shard is run again after the actor running it died (and how many times each
            actor slot is replaced); then ShardFailedError.
        address: the Ray cluster to connect to when Ray is not initialised yet (None: Ray's rules: $RAY_ADDRESS, a
            cluster started on this machine with ``ray start``, else a new local one). A cluster the pool started
            is shut down by ``close()``.
        runtime_env: Ray runtime environment for the actors (e.g. ``{"env_vars": {...}}``).
        start_timeout: seconds to wait for every actor to start and load the model (TimeoutError after: the
            cluster lacks the CPUs asked for, or loading is that slow).

    The actors start and load the model in the constructor; a load error (missing file, bad config) is raised here
    with its own type. Use as a context manager, or call ``close()``: it ends the actors.
    """

    def __init__(self, model, *, num_actors: int | None = None, threads: int = 1, dtype: str | None = None,
                 attention: str = "flash", max_retries: int = 3, address: str | None = None,
                 runtime_env: dict | None = None, num_cpus: float | None = None, start_timeout: float = 600.0):
        ray = _ray()
        from .model import Model

        _check_int("threads", threads, 1)
        _check_int("max_retries", max_retries, 0)
        if num_actors is not None:
            _check_int("num_actors", num_actors, 1)
        if attention not in ("flash", "standard"):
            raise ValueError(f'attention must be "flash" or "standard", got {attention!r}')
        if num_cpus is not None:
            if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float, np.number)):
                raise TypeError(f"num_cpus must be a number or None, got {type(num_cpus).__name__}")
            if not num_cpus > 0:
                raise ValueError(f"num_cpus must be > 0, got {num_cpus!r}")
        from .model import _dtype

        dtype = _dtype(dtype)  # a bad dtype fails here, not in every actor
        num_cpus = int(threads) if num_cpus is None else float(num_cpus)
        expect_types = None
        if isinstance(model, Model):
            if model.path is None:
                raise ValueError("this llmc.Model has no files (Model.init or an edited copy): save it with "
                                 "model.save(folder) on storage every node can read and pass the folder")
            expect_types = model.weight_types()
            if dtype is None:
                dtype = model._m.dtype() or None  # the recipe of its load(dtype=) / quantize(), if any
            spec = ("path", str(Path(model.path).resolve()), dtype)
        elif isinstance(model, (str, os.PathLike)):
            p = Path(model).expanduser()
            if p.exists():
                p = p.resolve()  # the actors' working directory is not ours
            elif not p.is_absolute():
                raise FileNotFoundError(f"{model}: no such checkpoint folder or .gguf file here; a path that only "
                                        "the cluster's nodes see must be absolute")
            spec = ("path", str(p), dtype)
        elif callable(model):
            if dtype is not None:
                raise ValueError("dtype applies to a path; a factory builds the model as it likes")
            spec = ("factory", model, None)
        else:
            raise TypeError(f"model must be a checkpoint path, a .gguf path, an llmc.Model loaded from one or a "
                            f"factory callable, got {type(model).__name__}")

        self._owns_ray = False
        if not ray.is_initialized():
            self._sigterm = signal.getsignal(signal.SIGTERM)  # ray.init replaces it; close() puts it back
            ray.init(address=address, include_dashboard=False)
            self._owns_ray = True
        if num_actors is None:
            num_actors = max(1, int(ray.cluster_resources().get("CPU", 1) // num_cpus))
        self.threads, self.max_retries = int(threads), int(max_retries)
        self._spec, self._attention = spec, attention
        opts: dict[str, Any] = dict(num_cpus=num_cpus, max_restarts=0, max_task_retries=0,
                                    scheduling_strategy="SPREAD")
        if runtime_env:
            opts["runtime_env"] = runtime_env
        self._actor_cls = ray.remote(**opts)(_Worker)
        self.actors: list = []  # live actor handles; a dead one is replaced in place (None: out of restarts)
        self._restarts: list[int] = []
        self._starting: dict = {}  # slot -> ready() ref of a replacement actor still loading the model
        self._last_start_error = None
        self.start_timeout = float(start_timeout)
        self.retries = 0  # shards re-run after an actor died, over the pool's life
        try:
            self.actors = [self._new_actor() for _ in range(int(num_actors))]
            self._restarts = [0] * len(self.actors)
            refs = [a.ready.remote() for a in self.actors]
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=float(start_timeout))
            if len(ready) < len(refs):
                raise TimeoutError(f"{len(refs) - len(ready)} of {len(refs)} actors did not start within "
                                   f"{start_timeout} s: each asks for {num_cpus} CPUs and the cluster has "
                                   f"{ray.available_resources().get('CPU', 0)} free, or loading the model is slow")
            self.info = [self._get(r) for r in refs]
        except BaseException:
            self.close()
            raise
        if expect_types is not None and self.info[0]["weight_types"] != expect_types:
            self.close()
            raise ValueError(f"the actors loaded {spec[1]} with dtype={dtype!r} and got other weight types than the "
                             "model passed in (was it quantized in memory?): pass dtype= to match")
        self.context_length: int = self.info[0]["context_length"]
        self.has_tokenizer: bool = self.info[0]["has_tokenizer"]

    # ------------------------------------------------------------------ lifecycle
    def _new_actor(self):
        return self._actor_cls.remote(self._spec, self._attention, self.threads)

    @staticmethod
    def _get(ref):
        """ray.get, raising the actor's own exception (ValueError, FileNotFoundError, ...) rather than Ray's wrapper."""
        ray = _ray()
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise

    def close(self) -> None:
        """End the actors (and the local Ray instance, when this pool started it)."""
        ray = _ray()
        for a in self.actors:
            try:
                ray.kill(a)
            except Exception:  # already gone
                pass
        self.actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            try:
                signal.signal(signal.SIGTERM, self._sigterm)
            except ValueError:  # not the main thread: leave Ray's handler
                pass
        self._owns_ray = False

    def __enter__(self) -> "ModelPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        hosts = sorted({i["host"] for i in getattr(self, "info", [])})
        return f"ModelPool({self._spec[1]!r}, actors={len(self.actors)}, threads={self.threads}, hosts={hosts})"

    # ------------------------------------------------------------------ scheduling
    def _run(self, method: str, payloads: list, args: tuple, sizes: list[int], progress) -> Iterator[tuple[int, Any]]:
        """Run actor.method(payload, *args) for every payload; yield (shard index, result) as shards finish.

        Each live actor holds up to two shards. A shard whose actor died goes back to the front of the queue; the
        actor is replaced (each slot at most max_retries times) and gets work once it has loaded the model; a shard
        is tried at most 1 + max_retries times."""
        ray = _ray()
        if not self.actors:
            raise ValueError("this ModelPool is closed")
        retryable = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                     ray.exceptions.OutOfMemoryError, ray.exceptions.ObjectLostError)
        queue = deque(range(len(payloads)))
        attempts = [0] * len(payloads)
        last_error: list = [None] * len(payloads)
        inflight: dict = {}  # ObjectRef -> (shard, actor slot, actor handle)
        load = [0] * len(self.actors)
        done_items, total_items = 0, sum(sizes)
        if progress:
            progress(0, total_items)
        try:
            while queue or inflight:
                for slot, actor in enumerate(self.actors):  # keep every live (started) actor busy
                    while queue and actor is not None and slot not in self._starting \
                            and load[slot] < _INFLIGHT_PER_ACTOR:
                        k = queue.popleft()
                        attempts[k] += 1
                        inflight[getattr(actor, method).remote(payloads[k], *args)] = (k, slot, actor)
                        load[slot] += 1
                starting = {ref: slot for slot, ref in self._starting.items()}
                if not inflight and not starting:
                    k = queue[0]
                    raise ShardFailedError(f"no live actor is left to run shard {k} ({sizes[k]} items); last "
                                           f"error: {last_error[k] or self._last_start_error}")
                # only replacements starting: wait for them at most start_timeout; running shards: as long as needed
                ready, _ = ray.wait(list(inflight) + list(starting), num_returns=1,
                                    timeout=None if inflight else self.start_timeout)
                if not ready:
                    raise TimeoutError(f"{len(starting)} replacement actors did not start within "
                                       f"{self.start_timeout} s and no other actor is left")
                for ref in ready:
                    if ref in starting:  # a replacement finished loading (or failed to)
                        slot = starting[ref]
                        del self._starting[slot]
                        try:
                            self.info[slot] = self._get(ref)
                        except Exception as e:
                            self._last_start_error = f"{type(e).__name__}: {e}"
                            self._replace(slot, self.actors[slot], load)
                        continue
                    k, slot, actor = inflight.pop(ref)
                    if self.actors[slot] is actor:
                        load[slot] -= 1
                    try:
                        result = self._get(ref)
                    except retryable as e:
                        last_error[k] = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
                        self._replace(slot, actor, load)
                        if attempts[k] > self.max_retries:
                            raise ShardFailedError(
                                f"shard {k} ({sizes[k]} items) failed {attempts[k]} times (max_retries="
                                f"{self.max_retries}); last error: {last_error[k]}") from e
                        self.retries += 1
                        queue.appendleft(k)
                        continue
                    done_items += sizes[k]
                    if progress:
                        progress(done_items, total_items)
                    yield k, result
        finally:
            for ref in inflight:  # an error or an abandoned iterator: stop the rest of this run's work
                try:
                    ray.cancel(ref)
                except Exception:
                    pass

    def _replace(self, slot: int, dead, load: list[int]) -> None:
        """The actor in `slot` died: kill it for good and start a new one, unless the slot used up its restarts.
        The new actor gets work once its ready() call returns (it loads the model first)."""
        ray = _ray()
        if self.actors[slot] is not dead:
            return  # already replaced (it held two shards)
        try:
            ray.kill(dead)
        except Exception:
            pass
        load[slot] = 0
        self._starting.pop(slot, None)
        if self._restarts[slot] < self.max_retries:
            self._restarts[slot] += 1
            self.actors[slot] = self._new_actor()
            self._starting[slot] = self.actors[slot].ready.remote()
        else:
            self.actors[slot] = None

    def _live(self) -> int:
        return sum(a is not None for a in self.actors)

    # ------------------------------------------------------------------ perplexity
    def _documents(self, corpus) -> tuple[list, bool]:
        """(documents, single): str and id sequences; single when the corpus is one text or one id sequence."""
        if isinstance(corpus, str):
            return [corpus], True
        if isinstance(corpus, np.ndarray):
            if corpus.ndim == 1:
                return [corpus], True
            if corpus.ndim == 2:
                return list(corpus), False
            raise ValueError(f"an id array must be 1-D (one text) or 2-D (one document per row), got {corpus.ndim}-D")
        docs = list(corpus)
        if not docs:
            raise ValueError("the corpus is empty")
        if all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in docs):
            return [np.asarray(docs)], True  # one id sequence, as llmc.perplexity takes it
        for i, d in enumerate(docs):
            if isinstance(d, (bool, int, np.integer)) or not isinstance(d, (str, Sequence, np.ndarray)):
                raise TypeError(f"document {i} is a {type(d).__name__}: give texts (str) or token-id sequences")
        return docs, False

    def _tokenize(self, docs: list, progress) -> list[np.ndarray]:
        """Token ids of every document: texts are encoded by the actors (sharded), id sequences checked here."""
        out: list = [None] * len(docs)
        texts = [i for i, d in enumerate(docs) if isinstance(d, str)]
        for i, d in enumerate(docs):
            if not isinstance(d, str):
                ids = np.asarray(d)
                if ids.dtype.kind not in "iu" and ids.size:  # (an empty list is float64 to NumPy)
                    raise TypeError(f"document {i}: token ids must be integers, got dtype {ids.dtype}")
                out[i] = ids.astype(np.int64).reshape(-1)
        if texts:
            if not self.has_tokenizer:
                raise ValueError("the model has no tokenizer: pass token ids instead of text")
            size = _shard_size(len(texts), self._live(), None)  # texts per shard (shard_size counts windows)
            groups = [texts[j: j + size] for j in range(0, len(texts), size)]
            # a bar for many texts; a progress callable counts windows only
            bar = _progress_fn(progress, "tokenize", "texts") if len(texts) > 1 and not callable(progress) else None
            for k, ids in self._run("tokenize", [[docs[i] for i in g] for g in groups], (), [len(g) for g in groups],
                                    bar):
                for i, a in zip(groups[k], ids):
                    out[i] = a
        return out

    def perplexity(self, corpus, *, context_length: int | None = None, stride: int | None = None,
                   method: str = "sliding", batch_size: int = 1, return_nll: bool = False,
                   shard_size: int | None = None, progress=None) -> CorpusPerplexity:
        """Perplexity of a corpus: one text (str), one id sequence, or a list of documents (texts or id sequences).

        context_length, stride, method, batch_size: as ``llmc.perplexity`` (the same windows, planned on the
        driver; see the module docstring for what a shard boundary does to them). Each document is scored on its
        own, as ``llmc.perplexity(model, texts=documents)`` does; one too short for a window (2 tokens; one full
        chunk for "chunks") adds no tokens and gets a NaN ``doc_ppl``. return_nll: also the per-token NLLs and
        positions per document. shard_size: windows per shard (default: ~4 shards per actor).
        progress: True / False / None (a bar on a terminal) / callable(done_windows, total_windows).

        ``ppl`` equals ``llmc.perplexity(model, text, ...).ppl`` (one text) or ``llmc.perplexity(model,
        texts=documents, batch_size=1, ...).ppl`` exactly on the same kernels, with batch_size=1 (the default). With
        batch_size > 1 each call is one batched prefill of windows grouped per shard, which rounds by batch
        composition: equal within the batched-inference tolerance."""
        from .perplexity import _windows_chunks, _windows_sliding

        if method not in ("sliding", "chunks"):
            raise ValueError(f'method must be "sliding" or "chunks", got {method!r}')
        _check_int("batch_size", batch_size, 1)
        ctx = int(context_length if context_length is not None else self.context_length)
        if ctx < 2:
            raise ValueError(f"context_length must be >= 2, got {context_length!r} (model: {self.context_length})")
        if ctx > self.context_length:
            raise ValueError(f"context_length {ctx} exceeds the model's context window {self.context_length}")
        if method == "sliding":
            stride = int(stride if stride is not None else max(1, ctx // 2))
            if not 1 <= stride <= ctx:
                raise ValueError(f"stride must be in [1, context_length={ctx}], got {stride}")
        elif ctx < 4:
            raise ValueError(f'method="chunks" needs context_length >= 4, got {ctx}')
        _shard_size(1, 1, shard_size)  # a bad shard_size fails before any work
        docs, single = self._documents(corpus)
        ids = self._tokenize(docs, progress)

        # the single-process window schedule of every document: (document, begin, end, first scored position)
        items = []
        for d, x in enumerate(ids):  # a document too short for a window adds no tokens (as llmc.perplexity(texts=))
            if len(x) >= 2:
                w = _windows_sliding(len(x), ctx, stride) if method == "sliding" else _windows_chunks(len(x), ctx)
                items += [(d, b, e, f) for b, e, f in w]
        if not items:
            what = "got" if single else "the documents have"
            raise ValueError(f"need at least 2 tokens (and one full chunk of {ctx} for method='chunks'); {what} "
                             f"{max(len(x) for x in ids)}")
        size = _shard_size(len(items), self._live(), shard_size)
        shards = [items[j: j + size] for j in range(0, len(items), size)]
        payloads = [[(ids[d][b:e], f - b) for d, b, e, f in s] for s in shards]

        partials: list[list] = [[] for _ in ids]
        counts = np.zeros(len(ids), np.int64)
        nlls: dict = {}
        retries0 = self.retries
        bar = _progress_fn(progress, "perplexity", "windows")
        for k, res in self._run("score", payloads, (int(batch_size), bool(return_nll)), [len(s) for s in shards],
                                bar):
            for (d, b, e, f), (parts, n, nll) in zip(shards[k], res):
                partials[d] += parts
                counts[d] += n
                if return_nll:
                    nlls[(d, b)] = (nll, np.arange(f, e))
        doc_sum = np.array([math.fsum(p) for p in partials], np.float64)
        total = math.fsum(p for ps in partials for p in ps)  # the correctly rounded sum of every token's NLL
        n = int(counts.sum())
        nll_out = pos_out = None
        if return_nll:  # windows in schedule order = positions in order, as llmc.perplexity concatenates them
            per_doc: list[list] = [[] for _ in ids]
            for d, b, _, _ in items:
                per_doc[d].append(nlls.pop((d, b)))
            nll_out = [np.concatenate([a for a, _ in w]) if w else np.zeros(0) for w in per_doc]
            pos_out = [np.concatenate([p for _, p in w]) if w else np.zeros(0, np.int64) for w in per_doc]
        return CorpusPerplexity(ppl=math.exp(total / n), nll_sum=total, n_tokens=n, doc_nll_sum=doc_sum,
                                doc_tokens=counts, method=method, context_length=ctx,
                                stride=stride if method == "sliding" else None, windows=len(items),
                                retries=self.retries - retries0, nll=nll_out, positions=pos_out)

    # ------------------------------------------------------------------ embeddings
    def iter_embed(self, texts_or_ids, *, pooling: str = "mean", normalize: bool = True,
                   shard_size: int | None = None, progress=None) -> Iterator[tuple[int, np.ndarray]]:
        """(index, embedding) pairs as shards finish (not in input order): ``model.embed`` of each item."""
        items = [texts_or_ids] if isinstance(texts_or_ids, str) else list(texts_or_ids)
        if not items:
            raise ValueError("embed needs at least one text or sequence")
        if pooling not in ("mean", "cls", "last"):
            raise ValueError(f'pooling must be "mean", "cls" or "last", got {pooling!r}')
        size = _shard_size(len(items), self._live(), shard_size)
        starts = list(range(0, len(items), size))
        bar = _progress_fn(progress, "embed", "texts")
        kwargs = dict(pooling=pooling, normalize=bool(normalize))
        for k, E in self._run("embed", [items[s: s + size] for s in starts], (kwargs,),
                              [len(items[s: s + size]) for s in starts], bar):
            for j, row in enumerate(E):
                yield starts[k] + j, row

    def embed(self, texts_or_ids, *, pooling: str = "mean", normalize: bool = True, shard_size: int | None = None,
              progress=None) -> np.ndarray:
        """``model.embed`` of a corpus: (N, d_model) float32, rows in input order. texts_or_ids: strings (encoded by
        each actor's tokenizer with the file's special tokens) or token-id sequences."""
        if not isinstance(texts_or_ids, str):
            texts_or_ids = list(texts_or_ids)
        n = 1 if isinstance(texts_or_ids, str) else len(texts_or_ids)
        out = None
        for i, row in self.iter_embed(texts_or_ids, pooling=pooling, normalize=normalize, shard_size=shard_size,
                                      progress=progress):
            if out is None:
                out = np.empty((n, row.shape[-1]), row.dtype)
            out[i] = row
        return out

    # ------------------------------------------------------------------ generation
    def iter_generate(self, prompts, max_new_tokens: int = 64, *, shard_size: int | None = None, progress=None,
                      **kwargs) -> Iterator[tuple[int, Any]]:
        """(index, output) pairs as shards finish (not in input order); see ``generate``."""
        if isinstance(prompts, str):
            raise TypeError("prompts must be a list of prompts (str or token-id lists); for one prompt use [prompt]")
        prompts = list(prompts)
        if not prompts:
            raise ValueError("generate needs at least one prompt")
        if kwargs.get("stream"):
            raise ValueError("stream=True is not available across a cluster: use iter_generate for results as "
                             "they finish")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
            raise TypeError(f"max_new_tokens must be an int, got {type(max_new_tokens).__name__}")
        size = _shard_size(len(prompts), self._live(), shard_size)
        starts = list(range(0, len(prompts), size))
        bar = _progress_fn(progress, "generate", "prompts")
        if kwargs.get("seed") is not None and (isinstance(kwargs["seed"], bool) or
                                              not isinstance(kwargs["seed"], (int, np.integer)) or kwargs["seed"] < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {kwargs['seed']!r}")
        shards = [(s, prompts[s: s + size]) for s in starts]
        for k, outs in self._run("generate", shards, (int(max_new_tokens), kwargs), [len(p) for _, p in shards], bar):
            for j, o in enumerate(outs):
                yield starts[k] + j, o

    def generate(self, prompts, max_new_tokens: int = 64, *, shard_size: int | None = None, progress=None,
                 **kwargs) -> list:
        """``model.generate(prompts, max_new_tokens, **kwargs)`` across the pool: one output per prompt, in input order.

        Each actor runs ``model.generate`` on its shard's prompts as one list (continuous batching). kwargs are
        model.generate's (temperature, top_k, top_p, num_beams, stop, seed, return_logprobs, batch_size, ...). As in
        one process, prompt i of the list samples from its own generator seeded ``seed + i`` (whatever shard it is
        in), so the outputs equal ``model.generate(prompts, max_new_tokens, **kwargs)`` in one process."""
        if not isinstance(prompts, str):
            prompts = list(prompts)
        out: list = [None] * (len(prompts) if not isinstance(prompts, str) else 1)
        for i, o in self.iter_generate(prompts, max_new_tokens, shard_size=shard_size, progress=progress, **kwargs):
            out[i] = o
        return out


# -------------------------------------------------------------------------------------------------- one-call helpers
_POOL_ARGS = ("num_actors", "threads", "dtype", "attention", "max_retries", "address", "runtime_env", "num_cpus",
              "start_timeout")


def _split(kwargs: dict) -> tuple[dict, dict]:
    pool = {k: v for k, v in kwargs.items() if k in _POOL_ARGS}
    return pool, {k: v for k, v in kwargs.items() if k not in _POOL_ARGS}


def perplexity(model, corpus, **kwargs) -> CorpusPerplexity:
    """``ModelPool(model, ...).perplexity(corpus, ...)`` with a pool for this one call (kwargs: both's)."""
    pool_kw, kw = _split(kwargs)
    with ModelPool(model, **pool_kw) as pool:
        return pool.perplexity(corpus, **kw)


def embed(model, texts_or_ids, **kwargs) -> np.ndarray:
    """``ModelPool(model, ...).embed(texts_or_ids, ...)`` with a pool for this one call."""
    pool_kw, kw = _split(kwargs)
    with ModelPool(model, **pool_kw) as pool:
        return pool.embed(texts_or_ids, **kw)


def generate(model, prompts, max_new_tokens: int = 64, **kwargs) -> list:
    """``ModelPool(model, ...).generate(prompts, max_new_tokens, ...)`` with a pool for this one call."""
    pool_kw, kw = _split(kwargs)
    with ModelPool(model, **pool_kw) as pool:
        return pool.generate(prompts, max_new_tokens, **kw)
