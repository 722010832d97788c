"""The one way stack/ builds the OSError a socket call raises: errno plus its text.

Pure function: touches nothing.
"""

from __future__ import annotations

import os


def os_error(code: int) -> OSError:
    """OSError(code, strerror(code)), as a failing Linux socket call reports it."""
    return OSError(code, os.strerror(code))
