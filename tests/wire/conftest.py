"""Hypothesis settings for the wire-format tests.

The fuzz and property tests in this directory use the settings profile
``vnet-wire`` (``settings.get_profile("vnet-wire")``), registered here and
chosen by the environment:

- default: 200 examples per test, so ``pytest tests/wire`` stays fast;
- ``VNET_FUZZ=long``: 20000 examples per test, for a long fuzzing run::

      VNET_FUZZ=long .venv/bin/pytest tests/wire -q -k fuzz

The profile is only registered, never loaded globally, so hypothesis tests
elsewhere in the repository keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_LONG = os.environ.get("VNET_FUZZ", "").lower() == "long"

settings.register_profile(
    "vnet-wire",
    max_examples=20000 if _LONG else 200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
