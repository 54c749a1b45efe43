"""One local Ray instance for the whole test session (``ray.init(num_cpus=2)``), for the tests of the Ray engines.

Without Ray the tests that use it are skipped, saying why; with SYNTHGUARD_REQUIRE_RAY=1 (CI) they fail instead."""

from __future__ import annotations

import logging
import os

import pytest


def require_ray():
    """The ``ray`` module (with Ray Data), or a skip (a failure under SYNTHGUARD_REQUIRE_RAY=1) without it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        if os.environ.get("SYNTHGUARD_REQUIRE_RAY") == "1":
            pytest.fail(f"SYNTHGUARD_REQUIRE_RAY=1 but Ray Data cannot be imported ({exc})")
        pytest.skip("needs Ray Data (pip install 'synthguard[ray]'); set SYNTHGUARD_REQUIRE_RAY=1 to fail instead")
    return ray


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance with 2 CPUs, started once and shut down at the end of the session; yields ``ray``."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
