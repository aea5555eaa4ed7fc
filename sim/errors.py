"""The one kind of error bad input raises, and the one way input files are read.

An :class:`InputError` holds a list of ``field: problem`` lines. Input comes from
people and systems that may be careless or hostile, so every line is short: a value
is quoted with :func:`quoted` (a few dozen characters at most), and the error itself
keeps each line to :data:`MAX_LINE` characters and at most :data:`MAX_PROBLEMS` lines.
Files are read with :func:`read_limited`, which refuses anything but a regular file
and never reads more than its limit, whatever the file system says about the size.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_LINE = 500
"""Longest problem line kept whole; longer ones are cut with an ellipsis."""
MAX_PROBLEMS = 20
"""Problem lines kept; the rest are counted in one last line."""
QUOTE_CHARS = 40
"""Characters of an offending value quoted in a message."""


def shorten(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis when longer."""
    text = " ".join(str(text).splitlines())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(value: object, limit: int = QUOTE_CHARS) -> str:
    """The ``repr`` of a value for a message, cut to ``limit`` characters (with its length when cut).

    Examples
    --------
    >>> quoted("x" * 1000, 10)
    "'xxxxxxxx… (1,000 characters)"
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return text[: limit - 1] + "…" + size


class InputError(ValueError):
    """Input that cannot be used; ``problems`` holds one line per problem, each naming its field.

    Lines are kept short (:data:`MAX_LINE`) and few (:data:`MAX_PROBLEMS`), so a hostile
    document never produces a message of its own size.
    """

    def __init__(self, problems: list[str]):
        lines = [shorten(line) for line in problems]
        if len(lines) > MAX_PROBLEMS:
            more = len(lines) - MAX_PROBLEMS + 1
            lines = [*lines[: MAX_PROBLEMS - 1], f"... and {more:,} more problems: fix these first"]
        self.problems = lines
        super().__init__("\n".join(self.problems))


def read_limited(path: str | os.PathLike, limit: int, what: str, error: type[InputError] = InputError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    The file's type is checked before it is opened (a FIFO would block, a device may
    never end) and again on the open descriptor (the path may change in between), and
    at most ``limit + 1`` bytes are read: the size the file system reports is not trusted.

    Parameters
    ----------
    path : str or PathLike
        The file.
    limit : int
        The largest size accepted, in bytes.
    what : str
        What the file should be, for messages ("a scenario file").
    error : type of InputError
        The error to raise (a subclass names the kind of input).

    Raises
    ------
    InputError
        Of type ``error``, one line naming the path: missing, a directory, not a regular
        file, unreadable, or larger than ``limit``.
    """
    name = str(path)
    try:
        _check_regular(os.stat(path), name, what, error)
        # O_NONBLOCK: should the path have become a FIFO since, opening it does not wait.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            _check_regular(os.fstat(handle.fileno()), name, what, error)
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise error([f"{name}: no such file"]) from None
    except IsADirectoryError:
        raise error([f"{name}: is a directory, not {what}"]) from None
    except OSError as problem:
        raise error([f"{name}: cannot read ({problem.strerror})"]) from None
    if len(data) > limit:
        raise error([f"{name}: file is larger than {limit:,} bytes"])
    return data


_KINDS = {
    stat.S_ISDIR: "a directory",
    stat.S_ISFIFO: "a FIFO (named pipe)",
    stat.S_ISCHR: "a device",
    stat.S_ISBLK: "a device",
    stat.S_ISSOCK: "a socket",
}


def file_kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words ("a regular file", "a device", ...)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for test, kind in _KINDS.items() if test(mode)), "something other than a regular file")


def _check_regular(status: os.stat_result, name: str, what: str, error: type[InputError]) -> None:
    if not stat.S_ISREG(status.st_mode):
        raise error([f"{name}: is {file_kind(status.st_mode)}, not {what}"])


def is_regular_file(path: str | Path) -> bool:
    """Whether ``path`` exists and is a regular file (following symbolic links)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
