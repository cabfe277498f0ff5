"""Where the Hydra config tree ``conf/`` is, and what its groups offer (no torch, no Lightning)."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """``conf/``: inside the installed package (wheel), else at the top of the source tree."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return packaged if packaged.is_dir() else here.parents[1] / "conf"


def group_options(root: Path) -> dict[str, list[str]]:
    """Each config group under ``root`` and its options (``hydra/`` ones are listed by hand)."""
    groups = {}
    folders = [p for p in root.rglob("*") if p.is_dir()]
    for folder in sorted(f for f in folders if "hydra" not in f.relative_to(root).parts):
        options = sorted(f.stem for f in folder.glob("*.yaml"))
        if options:
            groups[folder.relative_to(root).as_posix()] = options
    return groups
