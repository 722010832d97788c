"""A file description written in Python keeps FileDescription's per-class attributes in
its instance, so that compiled and interpreted code read the same values.

Compiled with mypyc (vnet/compile_stack.py), FileDescription keeps ``filetype``,
``rights_base`` … in slots that compiled code (fd_fdstat_get, fd_write's rights check)
reads directly; a Python subclass's class attribute of the same name would be seen by
Python code only. Such a subclass is refused at its first instance, on either build.
"""

from __future__ import annotations

import pytest

from vnet.guest.fdtable import FileDescription
from vnet.guest.pipe import Pipe, PipeReadEnd, PipeWriteEnd
from vnet.guest.wasi_types import Filetype, Rights


class _ClassLevelRights(FileDescription):
    rights_base = int(Rights.FD_READ)


class _InstanceRights(FileDescription):
    def __init__(self) -> None:
        super().__init__()
        self.filetype = Filetype.CHARACTER_DEVICE
        self.rights_base = int(Rights.FD_READ)


def test_a_subclass_that_sets_rights_at_class_level_is_refused() -> None:
    with pytest.raises(TypeError, match=r"_ClassLevelRights\.rights_base: set it in __init__"):
        _ClassLevelRights()


def test_a_subclass_that_sets_them_in_init_has_them_and_the_base_defaults_stay() -> None:
    described = _InstanceRights()
    assert described.rights_base == Rights.FD_READ
    assert described.filestat().filetype == Filetype.CHARACTER_DEVICE  # read by the base
    assert described.rights_inheriting == 0 and not described.is_socket
    assert FileDescription().filestat().filetype == Filetype.UNKNOWN


def test_pipe_ends_carry_their_own_rights() -> None:
    pipe = Pipe()
    read_end, write_end = PipeReadEnd(pipe), PipeWriteEnd(pipe)
    assert read_end.rights_base & Rights.FD_READ and not read_end.rights_base & Rights.FD_WRITE
    assert write_end.rights_base & Rights.FD_WRITE and not write_end.rights_base & Rights.FD_READ
