"""Safe file access: read only regular files, write files and checkpoint folders atomically.

Reading: a FIFO (or a device) in place of a file would block open() forever; `read_regular` refuses anything but
a regular file before opening it (and checks the opened descriptor again, with O_NONBLOCK so a FIFO that appears
in between cannot block).

Writing: a save killed part-way (SIGKILL, power loss, a full disk) must leave either the old file set or the new
one, never a mix. One file: write a temporary name in the same folder, fsync it, rename it over the target, fsync
the folder. A folder (a checkpoint: config.json + model.safetensors [+ tokenizer.json, optimizer state]): write the
whole new set into a fresh sibling folder, fsync every file and the folder, then swap it with the old folder in one
step (Linux renameat2(RENAME_EXCHANGE)), fsync the parent, and delete the old set. Files in the old folder that the
new set does not write (a README, say) are carried over, except old weights. Readers open a checkpoint folder once
(`stable_dir`) and read every file through that one handle, so a swap in the middle of a load cannot hand them a
config from one set and weights from the other.

`_hook`, when set (tests only), is called with a label before every step that touches the disk: the tests kill the
writer or fail the write at each step in turn and check that loading still gives the old or the new checkpoint.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import uuid
from pathlib import Path

_hook = None  # tests: called as _hook(label) before each disk step


def _step(label: str) -> None:
    if _hook is not None:
        _hook(label)


# ------------------------------------------------------------------ reading
def display(path) -> str:
    """path for an error message: always valid UTF-8, bytes of a non-UTF-8 name as \\xNN (as C messages show
    them)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path, mode: str = "rb", **kw):
    """open(path, mode) for reading, refusing anything but a regular file before it is opened (OSError naming
    what the path is), so a FIFO cannot block the caller."""
    st = os.stat(path)  # FileNotFoundError as usual
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"{display(path)}: is {_kind(st.st_mode)}, not a regular file; refusing to read it")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the stat and the open
            raise OSError(errno.EINVAL, f"{display(path)}: is not a regular file; refusing to read it")
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode, **kw)
    except BaseException:
        os.close(fd)
        raise


def read_regular(path) -> bytes:
    """The bytes of a regular file (see open_regular)."""
    with open_regular(path, "rb") as f:
        return f.read()


@contextlib.contextmanager
def stable_dir(path):
    """Yield a path that names the folder `path` as it is now, for the whole block: /proc/self/fd/N of a descriptor
    opened once, so every file read through it comes from the same folder even if a writer swaps a new
    checkpoint in meanwhile. Where /proc is missing, the path itself."""
    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        yield p
        return
    try:
        via = f"/proc/self/fd/{fd}"
        yield via if os.path.isdir(via) else p
    finally:
        os.close(fd)


def name_in_errors(e: BaseException, via: str, real) -> BaseException:
    """e with the stable_dir path `via` replaced by the folder's real name in its message, so errors name the
    files the user gave."""
    if via != os.fspath(real):
        # bytes of a non-UTF-8 name as \xNN, as the C messages show them
        real = display(real)
        e.args = tuple(a.replace(via, real) if isinstance(a, str) else a for a in e.args)
        if isinstance(e, OSError) and isinstance(e.filename, str):
            e.filename = e.filename.replace(via, real)
    return e


# ------------------------------------------------------------------ writing
def _fsync_path(path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_chunks(path, chunks) -> None:
    """Write the byte strings of `chunks` to a new file at path and fsync it (no rename: for files inside a folder
    that is itself swapped in atomically)."""
    with open(path, "xb") as f:
        for c in chunks:
            _step(f"write {os.path.basename(path)}")
            f.write(c)
        f.flush()
        _step(f"fsync {os.path.basename(path)}")
        os.fsync(f.fileno())


def atomic_write(path, data, *, text: bool = False) -> None:
    """Replace the file at path with data (bytes, or str written as UTF-8) atomically: temporary file in the same
    folder, fsync, rename over path, fsync the folder. A reader sees the old contents or the new, never a part."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        write_chunks(tmp, [data[i:i + (1 << 24)] for i in range(0, len(data), 1 << 24)] or [b""])
        _step(f"rename {path.name}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _step("fsync folder")
    _fsync_path(path.parent, directory=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE). False when the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        f = libc.renameat2
    except (OSError, AttributeError):
        return False
    f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    if f(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    e = ctypes.get_errno()
    if e in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(e, f"cannot swap {a} and {b}: {os.strerror(e)}")


def _old_weights(name: str) -> bool:
    return name.endswith(".safetensors") or name.endswith(".safetensors.index.json")


@contextlib.contextmanager
def atomic_dir(path):
    """Build a new version of folder `path` and put it in place in one step.

    Yields an empty sibling folder; write the whole new set into it (write_chunks). When the block ends without
    an exception, every file and the folder are fsynced, files of the old folder that the new set lacks are carried
    over (hard links; old weights excepted), and the new folder is swapped in atomically; the old set is then
    deleted. If the block raises, or the writer dies, the old folder is untouched (a leftover .tmp folder at most,
    removed by the next save)."""
    path = Path(path).expanduser().absolute()
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path}: exists and is not a folder")
    for stale in parent.glob(f".{path.name}.tmp-*"):  # left by a writer that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
    _step("mkdir")
    tmp.mkdir()
    try:
        yield tmp
        if path.is_dir():
            for old in path.iterdir():
                if not (tmp / old.name).exists() and not _old_weights(old.name) and old.is_file():
                    _step(f"link {old.name}")
                    try:
                        os.link(old, tmp / old.name)
                    except OSError:
                        shutil.copy2(old, tmp / old.name)
                        _fsync_path(tmp / old.name)
        _step("fsync folder")
        _fsync_path(tmp, directory=True)
        _step("swap")
        if not path.exists():
            os.rename(tmp, path)
        elif _exchange(tmp, path):
            pass  # tmp now holds the old set
        else:  # no atomic exchange here: move the old set aside, then the new one in (a reader may see none)
            aside = parent / f".{path.name}.tmp-old-{uuid.uuid4().hex[:12]}"
            os.rename(path, aside)
            os.rename(tmp, path)
            tmp = aside
        _step("fsync parent")
        _fsync_path(parent, directory=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # the old set (or nothing, for a new folder)
