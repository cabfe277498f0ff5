"""The one exception a bad setting raises, from the command line and from Python alike."""


class ConfigError(ValueError):
    """A config that cannot run; its message is the one line shown to the user."""
