"""The one error type for bad input: the command line prints its message alone and exits 2."""

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from a person: a file, a value, an option. The message is one line that names
    the field, what is allowed and what was received."""
