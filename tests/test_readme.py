"""Every runnable block of README.md runs as written, so the README cannot drift from the code.

The README is read as a newcomer follows it: section by section (``##`` and ``###``
headings), each in a fresh folder, its blocks in order. ``bash`` blocks run through
``bash -euo pipefail`` with this interpreter's ``bin/`` first on PATH (its ``linlab-train``,
``pip``, ``tensorboard``); ``python`` blocks run with this interpreter. A ``python`` or
``yaml`` block whose first line is only a path comment (``# my_research/__init__.py``) is a
file: it is written there, not run. Other languages (``text`` for printed output or
templates) are not run, and a runnable block is left out only when the line before it says
why: ``<!-- readme-test: skip (needs a SLURM cluster) -->``.

A block that runs must also be quiet: each line it writes to stderr is one the README
promises (``QUIET_STDERR``), so Lightning's, matplotlib's or Hydra's noise fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

README = Path(REPO) / "README.md"
RUNNABLE = ("bash", "python")
FILE_LANGUAGES = ("python", "yaml")
MIN_RUNNABLE_BLOCKS = 10  # the test cannot pass by finding nothing to run
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]+)\)\s*-->\s*$")
# stderr lines a README block may print: the CLIs' one-line refusals; TensorBoard's and pip's
# own start-up lines
QUIET_STDERR = re.compile(
    r"(linlab-train|linlab-report): .*"
    r"|TensorBoard \S+ at http://\S+ \(Press CTRL\+C to quit\)"
    r"|(Defaulting to user installation|WARNING: Running pip as the 'root' user).*"
)
FILE_COMMENT = re.compile(r"#\s*(?P<path>[\w./-]+\.(?:py|yaml))\s*")


@dataclass(frozen=True)
class Block:
    line: int
    section: str
    lang: str
    body: str
    skip_reason: str | None

    @property
    def file_path(self) -> str | None:
        first = self.body.splitlines()[0] if self.body else ""
        match = FILE_COMMENT.fullmatch(first)
        return match["path"] if self.lang in FILE_LANGUAGES and match else None

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE and self.file_path is None and self.skip_reason is None


def blocks(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        headings = re.findall(r"^#{2,3} (.+)$", before, re.M)
        previous_line = before.rstrip("\n ").rsplit("\n", 1)[-1]
        skip = SKIP.search(previous_line)
        found.append(
            Block(
                line=before.count("\n") + 1,
                section=headings[-1] if headings else "top",
                lang=match["lang"],
                body=textwrap.dedent(match["body"]),
                skip_reason=skip["why"] if skip else None,
            )
        )
    return found


def sections(all_blocks: list[Block]) -> dict[str, list[Block]]:
    grouped: dict[str, list[Block]] = {}
    for block in all_blocks:
        grouped.setdefault(block.section, []).append(block)
    return {name: group for name, group in grouped.items() if any(b.runnable for b in group)}


ALL_BLOCKS = blocks(README.read_text())
SECTIONS = sections(ALL_BLOCKS)


def test_the_readme_has_enough_runnable_blocks_and_says_why_it_skips_the_others():
    runnable = [b for b in ALL_BLOCKS if b.runnable]
    assert len(runnable) >= MIN_RUNNABLE_BLOCKS, [b.line for b in runnable]
    for block in ALL_BLOCKS:
        assert block.lang, f"README.md:{block.line}: a block without a language (text, bash, ...)"
        if block.skip_reason:
            assert block.lang in RUNNABLE, f"README.md:{block.line}: only runnable blocks skip"


@pytest.mark.parametrize("section", list(SECTIONS))
def test_readme_section_runs_as_written(section, tmp_path):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    for block in SECTIONS[section]:
        if block.file_path is not None:
            path = tmp_path / block.file_path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.body)
            continue
        if not block.runnable:
            continue
        command = (
            ["bash", "-euo", "pipefail", "-c", block.body]
            if block.lang == "bash"
            else [sys.executable, "-c", block.body]
        )
        proc = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, (
            f"README.md:{block.line} ({block.lang}) exited {proc.returncode}\n"
            f"{block.body}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        )
        noise = [ln for ln in proc.stderr.splitlines() if ln.strip() and not QUIET_STDERR.match(ln)]
        assert not noise, f"README.md:{block.line} ({block.lang}) printed on stderr:\n" + "\n".join(
            noise[:20]
        )
