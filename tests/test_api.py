"""The public API: every name in ``synthguard.__all__`` resolves, lazily, to the object its owner module defines."""

from __future__ import annotations

import importlib
import subprocess
import sys

import synthguard


def test_every_public_name_resolves_to_its_owner():
    assert set(synthguard.__all__) == {"__version__", *synthguard._EXPORTS}
    for name, target in synthguard._EXPORTS.items():
        module, _, attr = target.partition(":")
        assert getattr(synthguard, name) is getattr(importlib.import_module(module), attr or name)


def test_importing_the_package_loads_no_heavy_dependency():
    script = ("import sys, synthguard; synthguard.Home\n"
              "print(sorted({'torch', 'c2pa', 'transformers'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error():
    try:
        synthguard.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("synthguard.no_such_thing resolved")
