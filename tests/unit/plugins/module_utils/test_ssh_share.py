"""The SSH connection the modules share per peer: options only for a socket nobody else can reach."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

import pytest

from ansible_collections.dgx_spark.cluster.plugins.module_utils._ssh_share import PERSIST, shared_connection


@pytest.fixture
def short_path():
    """A directory with a short path (pytest's tmp_path leaves no room for a unix socket's name)."""
    path = tempfile.mkdtemp(prefix="ssh-", dir="/tmp")
    yield path
    shutil.rmtree(path)


def test_the_socket_goes_in_a_directory_made_private(short_path):
    directory = os.path.join(short_path, "share")
    options = shared_connection(str(directory))
    assert options == ["-o", "ControlMaster=auto", "-o", "ControlPath=%s/%%C" % directory,
                       "-o", "ControlPersist=%d" % PERSIST]
    assert stat.S_IMODE(os.lstat(directory).st_mode) == 0o700
    assert shared_connection(str(directory)) == options  # the next call (the next module) finds it as it was


def test_a_directory_others_can_enter_is_not_shared(tmp_path):
    directory = tmp_path / "share"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    assert shared_connection(str(directory)) == []


def test_a_symlink_in_its_place_is_not_followed(tmp_path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    os.symlink(tmp_path / "elsewhere", tmp_path / "share")
    assert shared_connection(str(tmp_path / "share")) == []


def test_a_path_too_long_for_a_unix_socket_or_with_spaces_is_not_shared(tmp_path):
    assert shared_connection(str(tmp_path / ("d" * 100))) == []
    assert shared_connection(str(tmp_path / "with space")) == []
    assert not (tmp_path / "with space").exists() and not (tmp_path / ("d" * 100)).exists()


def test_a_directory_that_cannot_be_made_is_not_shared(tmp_path):
    (tmp_path / "file").write_text("")
    assert shared_connection(str(tmp_path / "file" / "share")) == []
