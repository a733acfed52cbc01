"""File tools stay inside the sandbox root and answer bad paths with a message."""

from __future__ import annotations

import os

import pytest

from sandbox_helpers import checkout
from stackgym.sandboxes.workspace import MAX_WRITE_CHARS, ToolError


@pytest.fixture(scope="module")
def workspace():
    ws = checkout("app-python")
    yield ws
    ws.close()


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("../../etc/passwd", "outside the sandbox root"),
        ("app/../../secret", "outside the sandbox root"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/win.ini", "absolute path"),
        ("a\x00b", "NUL"),
        ("", "empty"),
        ("x" * 5000, "longer than"),
    ],
)
def test_file_tools_refuse_paths_that_leave_the_root(workspace, path, fragment):
    for call in (
        lambda: workspace.read_file(path),
        lambda: workspace.write_file(path, "x"),
        lambda: workspace.list_files(path),
    ):
        with pytest.raises(ToolError) as caught:
            call()
        assert fragment in caught.value.message


def test_symlinks_out_of_the_root_are_refused(workspace, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("hunter2")
    os.symlink(outside, workspace.root / "escape")
    try:
        with pytest.raises(ToolError, match="outside the sandbox root"):
            workspace.read_file("escape/secret.txt")
        with pytest.raises(ToolError, match="outside the sandbox root"):
            workspace.write_file("escape/new.txt", "x")
        assert not (outside / "new.txt").exists()
        listing, _ = workspace.list_files(".")
        assert not any("secret" in entry for entry in listing)
    finally:
        os.unlink(workspace.root / "escape")


def test_reading_reports_the_layer_of_the_file(workspace):
    text, access = workspace.read_file("app/models.py")
    assert "class User" in text
    assert (access.op, access.path, access.layer) == ("read", "app/models.py", "orm_schema")
    _, access = workspace.read_file("./README.md")
    assert (access.path, access.layer) == ("README.md", "app_code")


def test_databases_are_listed_but_cannot_be_read_or_overwritten(workspace):
    listing, _ = workspace.list_files(".")
    assert "app.db  (sqlite database)" in listing
    before = workspace.database_path("app").read_bytes()[:100]
    with pytest.raises(ToolError, match="database file, not text"):
        workspace.read_file("app.db")
    with pytest.raises(ToolError, match="cannot be overwritten"):
        workspace.write_file("app.db", "oops")
    assert (workspace.root / "app.db").read_bytes()[:100] == before


def test_write_creates_folders_and_refuses_oversized_content(workspace):
    access = workspace.write_file("metrics/new/answer.py", "x = 1\n")
    assert (workspace.root / "metrics/new/answer.py").read_text() == "x = 1\n"
    assert access.layer == "app_code"
    with pytest.raises(ToolError, match="the limit is"):
        workspace.write_file("metrics/big.py", "x" * (MAX_WRITE_CHARS + 1))
    assert not (workspace.root / "metrics/big.py").exists()


def test_missing_files_and_folders_get_a_hint(workspace):
    with pytest.raises(ToolError) as caught:
        workspace.read_file("nope.txt")
    assert "no file 'nope.txt'" in caught.value.message and "list_files" in caught.value.hint
    with pytest.raises(ToolError, match="is a folder"):
        workspace.read_file("app")
    with pytest.raises(ToolError, match="no folder"):
        workspace.list_files("nowhere")


def test_binary_files_are_not_returned_as_text(workspace):
    (workspace.root / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    try:
        with pytest.raises(ToolError, match="binary"):
            workspace.read_file("blob.bin")
    finally:
        (workspace.root / "blob.bin").unlink()


def test_messages_never_show_the_workspace_location(workspace):
    text = f"error in {workspace.root}/metrics/x.py and {workspace.folder}/node_modules"
    cleaned = workspace.sanitize(text)
    assert str(workspace.folder) not in cleaned
    assert "metrics/x.py" in cleaned
