"""Every ```python example of README.md runs, so the README cannot drift from the API.

The blocks run in order in one namespace, as a reader pasting them into one
session would (the second block uses the first one's ``graphs``), with an empty
feature cache; nothing in qgnn is patched. Each block is compiled with its own
README line numbers, so a failure points at the README line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\S*)\s*$")


def fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """``(language, first code line number, code)`` of every fenced block of a Markdown text."""
    blocks = []
    language: str | None = None
    start = 0
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if language is None and match:
            language, start, lines = match.group(1), number + 1, []
        elif language is not None and line.strip() == "```":
            blocks.append((language, start, "\n".join(lines) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    assert language is None, f"README.md: the code block opened at line {start - 1} is never closed"
    return blocks


def test_fenced_blocks_are_found_with_their_line_numbers() -> None:
    text = "intro\n```python\nx = 1\ny = 2\n```\ntext\n```bash\nmake\n```\n"
    assert fenced_blocks(text) == [("python", 3, "x = 1\ny = 2\n"), ("bash", 8, "make\n")]


def test_every_python_example_is_marked_python() -> None:
    """A block marked ``py``/``python3``/``pycon`` would escape the test below: only ``python`` is allowed."""
    languages = {language for language, _, _ in fenced_blocks(README.read_text(encoding="utf-8"))}
    assert "python" in languages
    assert not {lang for lang in languages if lang.startswith("py") and lang != "python"}, languages


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QGNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    blocks = fenced_blocks(README.read_text(encoding="utf-8"))
    examples = [(start, code) for language, start, code in blocks if language == "python"]
    assert len(examples) >= 2
    namespace: dict[str, object] = {"__name__": "readme"}
    for start, code in examples:
        exec(compile("\n" * (start - 1) + code, str(README), "exec"), namespace)
