"""Where the Hydra config tree ``conf/`` is, what its groups offer, and the Hydra that composes
from it as ``linlab-train``'s ``hydra.main`` does (no torch, no Lightning)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra import version
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_automatic_config_search_path, get_args_parser
from hydra.core.global_hydra import GlobalHydra

from linlab.errors import ConfigError

VERSION_BASE = "1.3"  # Hydra's defaults linlab is written for (``hydra.main(version_base=...)``)


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


def parse_command_line(argv: Sequence[str]):
    """Hydra's own argument parser, refusing in one line instead of printing its usage."""
    parser = get_args_parser()

    def refuse(message: str) -> None:
        raise ConfigError(f"{message} (see linlab-train --help)")

    parser.error = refuse
    return parser.parse_args(list(argv))


def create_hydra(args, primary_config_dir: Path) -> Hydra:
    """The Hydra ``hydra.main`` makes for ``linlab-train`` (search path, ``--config-dir``,
    version base: what composes here is what ``hydra.main`` composes)."""
    version.setbase(VERSION_BASE)
    search_path = create_automatic_config_search_path(
        str(Path(__file__).with_name("train.py")), None, args.config_path or str(primary_config_dir)
    )
    if args.config_dir is not None:
        extra = os.path.abspath(args.config_dir)
        if not os.path.isdir(extra):
            raise ConfigError(f"--config-dir={args.config_dir}: no such folder")
        search_path.prepend(provider="command-line", path=f"file://{extra}")
    GlobalHydra.instance().clear()
    return Hydra.create_main_hydra2(task_name="train", config_search_path=search_path)
