"""OmegaConf's interpolation parser, remembering the trees it made.

OmegaConf parses an interpolation's text with its ANTLR grammar each time the value is read
(``omegaconf.base`` calls ``grammar_parser.parse`` on every dereference; OmegaConf keeps the
grammar objects, not the trees). A sweep's jobs hold the same few texts (``${seed}``,
``${data.n_features}``, ``${hydra:runtime.output_dir}/checkpoints``, the job folder's
``${linlab.run_name:...}``) and every job's check, folder, build and summary reads them: half
of the resolution time of a 64-job sweep's up-front check was parsing. A tree is a pure function
of its text and OmegaConf's visitor only reads it, so a remembered tree resolves to exactly what
a fresh one does, for each job's own config; a text that does not parse raises as before (an
error is not remembered).
"""

from __future__ import annotations

import functools

from omegaconf import _utils, base, grammar_parser

TEXTS_KEPT = 4096


@functools.lru_cache(maxsize=TEXTS_KEPT)
def _parse(value: str, parser_rule: str = "configValue", lexer_mode: str = "DEFAULT_MODE"):
    return grammar_parser.parse(value, parser_rule, lexer_mode)


def remember() -> None:
    """Make OmegaConf's reads (``omegaconf.base``) and interpolation checks (``_utils``) use
    the remembering parser; once per process is enough, again does nothing."""
    base.parse = _utils.parse = _parse
