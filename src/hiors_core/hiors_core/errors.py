"""Errors that name the file and the problem, so a user gets one clear line rather than a traceback."""


class HiorsError(Exception):
    """Base class for the project's expected, user-facing errors."""


class ConfigError(HiorsError):
    pass


class EpisodeLogError(HiorsError):
    pass


class BadInputError(HiorsError):
    """A message or command that is refused: NaN, wrong size, unknown name, out of limits."""
