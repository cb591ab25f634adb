"""graphk/backend/allocator.py: glibc's malloc thresholds, left alone when the user chose."""
import sys

import pytest

from graphk.backend import allocator


@pytest.mark.parametrize("name, value", [("GRAPHK_MALLOC", "system"),
                                         ("MALLOC_TRIM_THRESHOLD_", "1000"),
                                         ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1")])
def test_a_users_choice_is_left_alone(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert allocator.keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_thresholds_are_set_on_glibc(monkeypatch):
    for name in ("GRAPHK_MALLOC", *allocator._USER_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    import platform
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc")
    assert allocator.keep_freed_memory() is True
