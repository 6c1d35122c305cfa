"""The package surface a new user meets: read-only weights by default, type information, import errors that say
what failed, and metadata. No reference library needed."""
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import llmc

ROOT = Path(__file__).resolve().parent.parent
PKG = Path(llmc.__file__).resolve().parent


def _tiny():
    return llmc.Model.init(dict(model_type="llama", vocab_size=50, hidden_size=16, intermediate_size=32,
                                num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=16), seed=0)


def test_state_dict_is_read_only_unless_asked():
    model = _tiny()
    sd = model.state_dict()
    name = "model.embed_tokens.weight"
    before = model.logits([1, 2, 3])
    with pytest.raises(ValueError, match="read-only"):
        sd[name] += 1.0  # the mistake this guards against: an in-place NumPy op on a weight
    with pytest.raises(ValueError, match="read-only"):
        np.multiply(sd[name], 2.0, out=sd[name])
    np.testing.assert_array_equal(model.logits([1, 2, 3]), before)
    mine = np.array(sd[name])  # a copy is the user's own
    mine += 1.0
    np.testing.assert_array_equal(model.logits([1, 2, 3]), before)
    w = model.state_dict(writable=True)
    w[name][...] = 0.0  # explicit: this changes the model
    assert not np.array_equal(model.logits([1, 2, 3]), before)
    np.testing.assert_array_equal(model.state_dict()[name], 0.0)  # views of the same memory
    model.load_state_dict({k: np.ones_like(v) for k, v in model.state_dict().items()})
    np.testing.assert_array_equal(model.state_dict()[name], 1.0)


def test_py_typed_and_version():
    assert (PKG / "py.typed").is_file()
    assert isinstance(llmc.__version__, str) and llmc.__version__.count(".") >= 2


def test_pyproject_metadata():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.10"
    assert meta["version"] == llmc.__version__
    assert meta["authors"] and any("Python :: 3.10" in c for c in meta["classifiers"])
    extras = meta["optional-dependencies"]
    light, full = extras["test-light"], extras["test"]
    assert not any(d.startswith(("torch", "transformers")) for d in light)
    assert set(light) <= set(full)  # the light extra is the full one without the heavy oracles


def _fake_tree(tmp: Path, *, built: str | None = None) -> Path:
    """A copy of llmc's Python sources in tmp/src/llmc (a source checkout: setup.py + csrc), without _core."""
    src = tmp / "src"
    shutil.copytree(PKG, src / "llmc", ignore=shutil.ignore_patterns("_core*", "__pycache__", "*.safetensors",
                                                                     "*.tiktoken", "kjv.txt"))
    (src / "setup.py").write_text("# source checkout marker\n")
    (src / "csrc").mkdir()
    if built is not None:
        (src / "llmc" / built).write_bytes(b"not an ELF file" * 300)
    return src


def _import(cwd: Path, pythonpath: str | None) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    # -S: no site-packages, so only `pythonpath` can hold another llmc (the import fails before NumPy is needed)
    r = subprocess.run([sys.executable, "-S", "-c", "import llmc"], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0
    return r.stderr.strip().splitlines()[-1]


def test_import_error_says_what_failed(tmp_path):
    src = _fake_tree(tmp_path)
    installed = str(PKG.parent)  # where the working llmc lives: plays the installed package
    # 1. python from the checkout's root, with a working llmc further down sys.path: shadowing is the cause
    msg = _import(src, installed)
    assert "shadows the installed llmc in" in msg and str(PKG) in msg
    # 2. the same checkout with nothing installed behind it: not built, and no talk of shadowing
    msg = _import(src, None)
    assert "not built in the source tree" in msg and "shadow" not in msg
    # 3. a _core file that does not load: the loader's own reason, not shadowing
    src2 = _fake_tree(tmp_path / "b", built="_core" + _ext_suffix())
    msg = _import(src2, installed)
    assert "failed to load" in msg and "shadows" not in msg and "invalid ELF header" in msg, msg
    # 4. run from elsewhere with the checkout on PYTHONPATH, behind nothing: the message names the tree
    msg = _import(tmp_path, str(src))
    assert "not built in the source tree" in msg


def _ext_suffix() -> str:
    import importlib.machinery

    return importlib.machinery.EXTENSION_SUFFIXES[0]


def test_import_message_for_a_broken_install(tmp_path):
    """An installed package (no setup.py beside it) that lost its extension: say the installation is incomplete."""
    site = tmp_path / "site"
    shutil.copytree(PKG, site / "llmc", ignore=shutil.ignore_patterns("_core*", "__pycache__", "*.safetensors",
                                                                      "*.tiktoken", "kjv.txt"))
    msg = _import(tmp_path, str(site))
    assert "missing from the installed package" in msg, msg


def test_examples_and_benchmarks_use_the_installed_package():
    """No example or benchmark puts the repository on sys.path (they must run against `pip install .`), and none
    writes next to itself by default."""
    for path in sorted((ROOT / "examples").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")):
        src = path.read_text()
        assert "sys.path.insert(0, str(ROOT))" not in src and "HERE.parent))" not in src, path.name
        assert "PYTHONPATH=os.pathsep.join([str(ROOT)" not in src, path.name
        assert 'Path(__file__).parent / "results"' not in src, path.name
        assert 'Path(__file__).parent / "training_curve.png"' not in src, path.name


def test_shipped_data_in_the_package():
    assert (PKG / "data" / "kjv.txt").is_file()
    for name in ("r50k_base", "cl100k_base", "o200k_base"):
        assert (PKG / "encodings" / f"{name}.tiktoken").is_file() and (PKG / "encodings" / f"{name}.json").is_file()
    assert (PKG / "encodings" / "LICENSE-tiktoken").is_file()


def test_cli_help_lists_defaults_for_every_option():
    from llmc.cli import build_parser

    ap = build_parser()
    subs = next(a for a in ap._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in subs.choices.items():
        fmt = p._get_formatter()
        for a in p._actions:
            if a.dest == "help":
                continue
            assert a.help, f"llmc {name} {a.dest} has no help text"
            if a.option_strings and not a.required:
                assert "%(default)s" in fmt._get_help_string(a), f"llmc {name} {a.option_strings[0]}: no default"
        assert "(default: " in p.format_help()
