"""What keeps one visitor's input from reaching another's screen or the server: text, guards, gone sessions.

Streamlit reads every message, caption and label as Markdown, so a scenario name, a
stage name, a file name or a message quoting a value could otherwise show a link, an
image or an icon of the visitor's choosing: :func:`text` makes any such string plain
text. :func:`guard` wraps each page: an error shows a plain line and goes to the server
log with its traceback. :func:`check_alive` stops a long simulation whose visitor has
closed the tab.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

LOG = logging.getLogger("funnel_sim.app")
# Signs that start Markdown where they stand: links, images and link definitions need "](", "][" or "]:",
# autolinks <, emphasis * ~ and _ at a word's edge, code `, maths $; and at the start of a line
# #, >, + or -, or "1." make a heading, quote or list. Ordinary punctuation is left as it is.
_ANYWHERE = re.compile(r"[\\`*<$~|&]|\](?=[(\[:])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# Bare addresses (scheme://, www., name@host) and Streamlit's :icon: and :color[...] are found in the text after
# escapes are read: a zero-width space after the colon, before the dot or the at sign breaks them.
_AFTER_ESCAPES = re.compile(r"(?<=:)(?=\S)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)
_LINE_START = re.compile(r"^([#>+\-]|\d+[.)])")
PLAIN_ERROR = "Something went wrong on this page. It has been logged; try other inputs, or reload the page."


def text(value: object) -> str:
    """``value`` as Markdown that shows exactly its characters: every sign that would start Markdown escaped.

    Runs of white space (new lines too) become one space, so nothing starts a line but the text's first character.
    """
    escaped = _ANYWHERE.sub(lambda sign: "\\" + sign.group(0), " ".join(str(value).split()))
    escaped = _AFTER_ESCAPES.sub("\u200b", escaped)
    return _LINE_START.sub(lambda start: start.group(0)[:-1] + "\\" + start.group(0)[-1], escaped)


class SessionGone(Exception):
    """The visitor whose page asked for this work has gone: the work stops."""


def session_alive() -> bool:
    """Whether the browser session running this script is still connected (True outside a server)."""
    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(ctx.session_id)


def check_alive(*_progress) -> None:
    """Raise :class:`SessionGone` when the session has gone (a runner progress callback, between chunks)."""
    if not session_alive():
        raise SessionGone


@contextmanager
def guard(where: str) -> Iterator[None]:
    """Run a page: any error shows :data:`PLAIN_ERROR` and is logged with its traceback, never shown."""
    try:
        yield
    except SessionGone:
        LOG.info("%s: the session has gone; its work was stopped", where)
    except Exception:
        LOG.exception("%s: error while drawing the page", where)
        st.error(PLAIN_ERROR, icon=":material/error:")
