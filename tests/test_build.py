"""The compiled extensions import and are the ones built from csrc/."""
import importlib

import pytest


@pytest.mark.parametrize("name", ["_core", "_kernels", "_requant"])
def test_extension_imports(name):
    mod = importlib.import_module(f"fixedpoint.{name}")
    assert mod.__name__ == f"fixedpoint.{name}"
