"""Atomic saves and safe reads (llmc/_files.py, llmc/checkpoint.py).

A save over an existing checkpoint is killed (SIGKILL) at every disk step in turn, killed at random moments, and
made to fail (an injected ENOSPC at every step, and a real full tmpfs when the test may mount one); afterwards the
folder must load as exactly the old checkpoint or exactly the new one — config, weights and, for training
checkpoints, the optimizer state and step all from the same set. Non-regular files (FIFOs) are refused at once."""
import errno
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import llmc
from llmc import _files

ROOT = Path(__file__).resolve().parent.parent
CFG = dict(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32)
IDS = [1, 2, 3, 4, 5]


def make(tag):
    """Model A (seed 1) or B (seed 2); B's config differs too (rope_theta), so a mixed set is detectable."""
    cfg = dict(CFG, rope_theta=10000.0 if tag == "A" else 20000.0)
    return llmc.Model.init(cfg, seed=1 if tag == "A" else 2)


def which(path):
    """'A' or 'B' when the folder holds exactly that checkpoint; anything else fails the test."""
    m = llmc.Model.load(path)
    out = m.logits(IDS)
    theta = m.config["rope_theta"]
    for tag in "AB":
        ref = make(tag)
        if theta == ref.config["rope_theta"] and np.array_equal(out, ref.logits(IDS)):
            return tag
    raise AssertionError(f"{path} holds neither the old nor the new checkpoint (rope_theta {theta})")


CHILD = r"""
import sys
sys.path.insert(0, {root!r})
import llmc
sys.path.insert(0, {tests!r})
from test_atomic_save import make
path = sys.argv[1]
a, b = make("A"), make("B")
print("ready", flush=True)
while True:  # save B and A in turn until killed from outside
    b.save(path); a.save(path)
"""


def spawn_saver(path):
    # the child imports the same llmc as this test: the installed one after `pip install .` (the repository root
    # would shadow it with an unbuilt source tree), the in-place build in a development checkout
    code = CHILD.format(root=str(Path(llmc.__file__).resolve().parent.parent), tests=str(ROOT / "tests"))
    return subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))


def killed_at(k, save):
    """Run save() in a forked child that SIGKILLs itself just before its k-th disk step (k = 0: never); returns
    (how the child ended, the number of steps it reached). Everything the save needs is built before the fork, so
    the child runs only Python and file I/O (no OpenMP, which does not survive fork)."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive: the child uses none
        pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        steps = [0]

        def hook(label):
            steps[0] += 1
            if steps[0] == k:
                os.kill(os.getpid(), signal.SIGKILL)

        _files._hook = hook
        try:
            save()
            os.write(w, str(steps[0]).encode())
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    out = os.read(r, 100)
    os.close(r)
    return (-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)), int(out or 0)


def test_model_save_killed_at_every_step(tmp_path):
    path = tmp_path / "ckpt"
    a, b = make("A"), make("B")
    a.save(path)
    (path / "README.md").write_text("kept")  # files the checkpoint does not own survive saves
    rc, n_steps = killed_at(0, lambda: b.save(path))  # never killed: counts the steps
    assert rc == 0 and n_steps >= 8
    assert which(path) == "B"
    a.save(path)
    seen = []
    for k in range(1, n_steps + 1):
        rc, _ = killed_at(k, lambda: b.save(path))
        assert rc == -signal.SIGKILL, k
        seen.append(which(path))
        assert (path / "README.md").read_text() == "kept"
        if seen[-1] == "B":
            a.save(path)  # the next kill point starts from the old checkpoint again
        assert which(path) == "A"
    # killed before the swap: the old set; after it: the new one, and never anything else (which() checks)
    assert seen[0] == "A" and seen[-1] == "B" and seen == sorted(seen)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ckpt"]
    assert len(leftovers) <= 1  # at most the last killed writer's temporary folder, removed by the next save
    b.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_model_save_killed_at_random_moments(tmp_path):
    path = tmp_path / "ckpt"
    make("A").save(path)
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = spawn_saver(path)
        assert p.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.05, 0.5))  # a save takes a few ms: this lands anywhere in one
        p.kill()
        p.wait()
        assert which(path) in ("A", "B")


@pytest.mark.parametrize("what", ["model", "tokenizer"])
def test_failed_writes_leave_old_file_set(tmp_path, what):
    # an injected ENOSPC at every disk step in turn: the save raises, and the old set (or, past the swap, the new
    # one) is what loads; nothing temporary is left behind
    path = tmp_path / ("ckpt" if what == "model" else "tok.json")
    tok_a = llmc.Tokenizer.train("aaa bbb ccc aaa bbb " * 10, 260, progress=False)
    tok_b = llmc.Tokenizer.train("xyz xyz uvw xyz " * 10, 262, progress=False)
    save_a = (lambda: make("A").save(path)) if what == "model" else (lambda: tok_a.save(path))
    save_b = (lambda: make("B").save(path)) if what == "model" else (lambda: tok_b.save(path))
    current = (lambda: which(path)) if what == "model" else \
        (lambda: {tok_a.n_vocab: "A", tok_b.n_vocab: "B"}[llmc.Tokenizer.from_file(path).n_vocab])
    save_a()
    labels = []
    _files._hook = labels.append
    try:
        save_b()
    finally:
        _files._hook = None
    save_a()
    for k in range(1, len(labels) + 1):
        count = [0]

        def fail(label):
            count[0] += 1
            if count[0] == k:
                raise OSError(errno.ENOSPC, "No space left on device (injected)")

        _files._hook = fail
        try:
            with pytest.raises(OSError, match="No space"):
                save_b()
        finally:
            _files._hook = None
        tag = current()
        if tag == "B":
            save_a()
        assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], labels[k - 1]


def test_full_tmpfs(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    a = make("A")
    size = sum(v.nbytes for v in a.state_dict().values()) * 3 // 2  # room for one checkpoint, not two
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        path = mnt / "ckpt"
        a.save(path)
        with pytest.raises(OSError) as e:
            make("B").save(path)  # the disk is full before the new set is complete
        assert e.value.errno == errno.ENOSPC
        assert which(path) == "A"
        assert [p.name for p in mnt.iterdir()] == ["ckpt"]
    finally:
        subprocess.run(["umount", str(mnt)])


# ------------------------------------------------------------------ training checkpoints (llmc train --resume)
def training_set(tag):
    from llmc.training import Trainer

    m = make(tag)
    t = Trainer(m.config, m.state_dict(writable=True), 2, 8)
    for i, _ in enumerate(t.names):  # moments that identify the set
        t.m[i][...] = 1.0 if tag == "A" else 2.0
        t.v[i][...] = 3.0 if tag == "A" else 4.0
    t.step_count = 5 if tag == "A" else 10
    return m, t


def save_training(path, tag, built=None):
    from llmc.checkpoint import save_training_checkpoint

    m, t = built or training_set(tag)
    save_training_checkpoint(path, m, t, t.step_count, 0, None)


def load_training(path):
    from llmc.checkpoint import load_training_checkpoint
    from llmc.training import Trainer

    model, trainer, step = load_training_checkpoint(path, lambda m: Trainer(m.config, m.state_dict(writable=True), 2, 8))
    tag = which(path)
    want = (5, 1.0, 3.0) if tag == "A" else (10, 2.0, 4.0)
    assert (step, trainer.step_count) == (want[0], want[0])
    assert all((m == want[1]).all() for m in trainer.m) and all((v == want[2]).all() for v in trainer.v)
    np.testing.assert_array_equal(model.logits(IDS), make(tag).logits(IDS))
    return tag


def test_training_checkpoint_killed_at_every_step(tmp_path):
    path = tmp_path / "run"
    b = training_set("B")
    save_training(path, "A")
    rc, n_steps = killed_at(0, lambda: save_training(path, "B", b))
    assert rc == 0 and n_steps >= 8
    assert load_training(path) == "B"
    save_training(path, "A")
    for k in range(1, n_steps + 1):
        rc, _ = killed_at(k, lambda: save_training(path, "B", b))
        assert rc == -signal.SIGKILL, k
        if load_training(path) == "B":  # resumable, from one whole set
            save_training(path, "A")


def test_damaged_optimizer_state_is_a_clear_error(tmp_path):
    path = tmp_path / "run"
    save_training(path, "A")
    data = (path / "optimizer.npz").read_bytes()
    (path / "optimizer.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="optimizer.npz: damaged"):
        load_training(path)
    (path / "optimizer.npz").unlink()
    with pytest.raises(FileNotFoundError, match="optimizer.npz: missing"):
        load_training(path)


# ------------------------------------------------------------------ FIFOs and other non-regular files
def refuses_quickly(fn, fifo):
    """fn() must raise OSError at once (not block opening the FIFO); unblocks it if it did block."""
    box = {}

    def run():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # a writer appears: the blocked open returns
        os.close(fd)
        t.join(10)
        pytest.fail(f"{fn} blocked on the FIFO {fifo}")
    assert isinstance(box.get("e"), OSError), box.get("e")
    assert "regular file" in str(box["e"])


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json"])
def test_fifo_in_a_checkpoint_is_refused(tmp_path, name):
    path = tmp_path / "ckpt"
    make("A").save(path)
    if (path / name).exists():
        (path / name).unlink()
    os.mkfifo(path / name)
    refuses_quickly(lambda: llmc.Model.load(path), path / name)


def test_fifo_tokenizer_and_tiktoken_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refuses_quickly(lambda: llmc.Tokenizer.from_file(fifo), fifo)
    refuses_quickly(lambda: llmc.Tokenizer.from_tiktoken(fifo, pattern="gpt2"), fifo)
    refuses_quickly(lambda: llmc._core.safetensors_info(str(fifo)), fifo)
    refuses_quickly(lambda: _files.read_regular("/dev/zero"), "/dev/null")
