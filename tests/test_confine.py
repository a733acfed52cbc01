"""Agent-supplied paths stay inside the sandbox root."""

from __future__ import annotations

import os

import pytest

from stackgym.core.confine import PathNotAllowed, relative_to_root, resolve_inside


@pytest.fixture
def root(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.sql").write_text("select 1")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    os.symlink(outside, tmp_path / "escape")
    os.symlink(tmp_path / "models", tmp_path / "alias")
    return tmp_path


def test_relative_paths_inside_resolve(root):
    assert resolve_inside(root, "models/a.sql") == (root / "models" / "a.sql").resolve()
    assert resolve_inside(root, "./models/../models/a.sql").name == "a.sql"
    assert relative_to_root(root, resolve_inside(root, "alias/a.sql")) == "models/a.sql"


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("../x", "outside the sandbox root"),
        ("models/../../x", "outside the sandbox root"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows", "absolute path"),
        ("escape/secret", "outside the sandbox root"),
        ("a\x00b", "NUL"),
        ("", "empty"),
        ("a" * 2000, "longer than"),
    ],
)
def test_escaping_paths_are_refused_with_a_message(root, path, fragment):
    with pytest.raises(PathNotAllowed, match=fragment) as info:
        resolve_inside(root, path)
    assert "relative to the sandbox root" in info.value.hint
