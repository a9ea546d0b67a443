"""One exception type for every user-facing failure.

The CLI prints ``error: <message>`` on one line and exits non-zero; the message must name the
problem and the fix.
"""


class Rl2fpgaError(Exception):
    """A problem the user can fix: bad input, a missing tool, a model that does not fit."""


class ToolMissing(Rl2fpgaError):
    """A vendor or open-source tool is not on PATH."""
