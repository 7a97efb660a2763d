"""The exceptions pfnforge raises for a user's mistake; each message names the problem and the fix."""

from __future__ import annotations


class PfnforgeError(Exception):
    """Base of every error pfnforge raises on bad input or a broken installation."""


class ConfigError(PfnforgeError, ValueError):
    """A configuration value or key is wrong: the message names the field and what it accepts."""


class UnknownPriorError(PfnforgeError, KeyError):
    """A prior name that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0])


class PluginError(PfnforgeError):
    """A prior plugin failed to load or clashes with another one; the message names the distribution."""


class SchemaError(PfnforgeError, ValueError):
    """An Arrow batch that does not follow the pfnforge batch schema it claims."""


class StreamError(PfnforgeError):
    """A batch source failed: a prior server answered with an error, sent what is not a batch, or delivered
    nothing before the deadline; the message names the server and what it said."""


class ModelNotFoundError(PfnforgeError, LookupError):
    """A model source (path, registry name, version, alias or run) that does not exist; the message lists
    what does."""


class InputError(PfnforgeError, ValueError):
    """Data a trained model cannot take (beyond its limits, a bad target, unknown columns); the message names
    the problem and what to do."""
