"""levels-tf's cache folder: $XDG_CACHE_HOME when absolute, else ~/.cache."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from levels_tf import plugin_cache, templating
from levels_tf.cache_dir import cache_dir


def test_an_absolute_xdg_cache_home_is_followed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache" / "levels-tf"


@pytest.mark.parametrize("value", [None, "", "relative/cache"])
def test_without_an_absolute_xdg_cache_home_the_home_cache_is_used(tmp_path, monkeypatch, value):
    # The XDG spec: a relative path in the variable is invalid and ignored.
    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", value)
    assert cache_dir() == tmp_path / ".cache" / "levels-tf"


def test_every_cache_is_inside_the_one_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert plugin_cache.folder().parent == cache_dir()
    cache = templating._bytecode_cache()
    assert isinstance(cache, jinja2.FileSystemBytecodeCache)
    assert Path(cache.directory).parent == cache_dir()
