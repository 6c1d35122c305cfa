"""Every ```python block in README.md and docs/*.md runs as written.

The convention (for everyone writing docs):

- Each file's ```python blocks run top to bottom in one namespace (like a notebook), so a block may use names an
  earlier block of the same file defined. They run in a fresh temporary working directory: a block that writes
  files ("out/", "kjv.json") writes them there, never into the repository.
- Write snippets that run offline, in seconds, on what llmc ships: `llmc.load_default()`, `llmc.get_encoding(...)`,
  `llmc.data.kjv_lines(...)`, `llmc.Model.init(config)` for a small random model, `model.save("ckpt")` then
  `llmc.Model.load("ckpt")`.
- A block that cannot run that way gets an HTML comment on the line(s) just before its opening fence (blank lines
  in between are fine; the comment does not render on GitHub):

      <!-- snippet: skip (why: downloads / needs your files / takes minutes) -->
      <!-- snippet: requires torch, transformers -->   (runs only when these modules import, else skipped)

  A skipped block must still be correct Python (it is compiled, so a syntax error fails the test).
- Blocks in other languages (```bash, ```c, ```text, plain ```) are not run.
"""
import ast
import importlib.util
import re
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

_FENCE = re.compile(r"^```python[ \t]*$")
_MARK = re.compile(r"^<!--\s*snippet:\s*(skip|requires)\b\s*(.*?)\s*-->\s*$")


def snippets(path: Path) -> list[tuple[int, str, str, str]]:
    """[(line number of the opening fence, code, marker ('' | 'skip' | 'requires'), marker argument)]."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        if _FENCE.match(lines[i]):
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            m = _MARK.match(lines[j].strip()) if j >= 0 else None
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end == len(lines):
                raise AssertionError(f"{path.name}:{i + 1}: ```python block without a closing fence")
            out.append((i + 1, "\n".join(lines[i + 1:end]) + "\n", m.group(1) if m else "",
                        m.group(2) if m else ""))
            i = end + 1
        else:
            i += 1
    return out


def test_marker_parsing(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("text\n<!-- snippet: skip (downloads) -->\n\n```python\nx = 1\n```\n```python\ny = 2\n```\n"
                  "<!-- snippet: requires torch, numpy -->\n```python\nz = 3\n```\n```bash\nls\n```\n")
    got = [(code, mark, arg) for _, code, mark, arg in snippets(md)]
    assert got == [("x = 1\n", "skip", "(downloads)"), ("y = 2\n", "", ""), ("z = 3\n", "requires", "torch, numpy")]


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(ROOT).as_posix() for p in FILES])
def test_snippets_run(path, tmp_path, monkeypatch, capsys):
    blocks = snippets(path)
    if not blocks:
        pytest.skip(f"{path.name} has no python blocks")
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": "__snippet__"}
    ran, skipped = 0, []
    for line, code, mark, arg in blocks:
        where = f"{path.relative_to(ROOT)}:{line}"
        try:
            compiled = compile(ast.parse(code, where), where, "exec")
        except SyntaxError as e:
            pytest.fail(f"{where}: the block is not valid Python: {e}")
        if mark == "skip":
            skipped.append(f"{where} {arg}")
            continue
        if mark == "requires":
            missing = [m for m in re.split(r"[,\s]+", arg) if m and importlib.util.find_spec(m) is None]
            if missing:
                skipped.append(f"{where} needs {', '.join(missing)}")
                continue
        try:
            exec(compiled, ns)
        except Exception:
            pytest.fail(f"{where}: the block does not run as written:\n{code}\n{traceback.format_exc(limit=-3)}")
        ran += 1
    capsys.readouterr()  # snippets print; keep the test output quiet
    assert ran or skipped
