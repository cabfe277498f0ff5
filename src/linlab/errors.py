"""The one exception a bad setting raises, from the command line and from Python alike."""


class ConfigError(ValueError):
    """A config that cannot run; its message is the one line shown to the user."""


def first_line(error: BaseException) -> str:
    """What an exception says, in one line (its type's name where it says nothing)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
