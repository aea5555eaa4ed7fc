"""Numbers and nouns as people read them: the one formatter of the CLI, the app and library messages.

Text shows three significant figures as a plain decimal (``25,000``, ``12.6``, never
``2.5e+04``), money as a manager writes it (``$1.02M``, ``$250k``, ``$8,400``), whole counts
with separators, and a noun in the plural it takes (``1 open deal``, ``3 open deals``).
Machine-readable output (JSON, CSV, TOML) keeps full precision and never comes through here.
"""

from __future__ import annotations

import math

MONEY_UNITS = ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k"))
"""(from, divisor, unit): money from each threshold on is written in its unit: $1.02M, $250k, $25k (below
$10,000 in full: $8,400)."""


def _three_figures(x: float) -> tuple[float, int]:
    """``x`` rounded to three significant figures, and the decimals that show them (0 for whole hundreds)."""
    if x == 0 or not math.isfinite(x):
        return x, 0
    rounded = float(f"{x:.3g}")  # rounding may carry to the next power of ten: 999.6 -> 1000
    return rounded, max(0, 2 - math.floor(math.log10(abs(rounded))))


def _plain(x: float, decimals: int) -> str:
    """A plain decimal with thousands separators and no trailing zeros after the point."""
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def human(x: float, kind: str = "figure", signed: bool = False) -> str:
    """A number as people read it in the command line's reports (JSON keeps full precision).

    Parameters
    ----------
    x : float
    kind : {"figure", "money", "count"}
        ``figure``: three significant figures as a plain decimal (25,000, 12.6, 0.825;
        never 2.5e+04); ``money``: as a manager writes it ($1.02M, $250k, $8,400);
        ``count``: a whole number with thousands separators (1,023,784).
    signed : bool
        Write a ``+`` before positive numbers (changes).

    Returns
    -------
    str
        ``n/a`` for a value that is not a finite number.
    """
    if x is None or not math.isfinite(x):
        return "n/a"
    sign = "-" if x < 0 else "+" if signed and x > 0 else ""
    size = abs(x)
    if kind == "count":
        return sign + f"{round(size):,}"
    rounded, decimals = _three_figures(size)
    if kind == "figure":
        return sign + _plain(rounded, decimals)
    if kind != "money":
        raise ValueError(f"kind: must be figure, money or count, got {kind!r}")
    for threshold, divisor, unit in MONEY_UNITS:
        if rounded >= threshold:
            scaled, decimals = _three_figures(rounded / divisor)
            return f"{sign}${_plain(scaled, decimals)}{unit}"
    return f"{sign}${_plain(rounded, decimals)}"


def counted(n: float, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for one: ``1 open deal``, ``3 open deals``, ``1,200 runs``, ``6.5 weeks``.

    ``plural`` is the plural where adding an ``s`` is wrong (``counted(2, "reply", "replies")``).
    """
    number = human(n, "count") if float(n).is_integer() else human(n)
    return f"{number} {noun if n == 1 else plural or noun + 's'}"
