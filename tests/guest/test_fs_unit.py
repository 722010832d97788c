"""vnet.guest.fs on a real temporary directory: containment first, then the operations.

Every escape attempt must fail with the errno wasmtime gives (EPERM for
`..` above the directory and for absolute paths or symlink targets, ELOOP for
symlink loops) and must leave the outside untouched. These tests call fs.py
directly; test_fs_guest.py checks the same through a guest against wasmtime.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vnet.guest.fs import (
    MAX_SYMLINK_EXPANSIONS,
    Directory,
    OpenRequest,
    RegularFile,
    open_preopen,
    split_parent,
)
from vnet.guest.wasi_types import (
    FDFLAGS_APPEND,
    FDFLAGS_NONBLOCK,
    FDFLAGS_SYNC,
    FSTFLAGS_ATIM,
    FSTFLAGS_ATIM_NOW,
    FSTFLAGS_MTIM,
    FSTFLAGS_MTIM_NOW,
    OFLAGS_CREAT,
    OFLAGS_DIRECTORY,
    OFLAGS_EXCL,
    OFLAGS_TRUNC,
    Errno,
    Filetype,
    WasiError,
)

READ = OpenRequest(read=True)
CREATE = OpenRequest(oflags=OFLAGS_CREAT, read=True, write=True)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/root (the preopen) next to tmp/outside, with symlinks of every kind."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("secret\n")
    (root / "f").write_text("hello\n")
    (root / "a" / "g").write_text("data\n")
    links = {
        "to_etc": "/etc", "to_etc_passwd": "/etc/passwd", "up": "../outside",
        "up_secret": "../outside/secret", "lf": "f", "la": "a", "lag": "a/g",
        "loop1": "loop2", "loop2": "loop1", "self": "self", "dangling": "nothere",
        "climb": "a/b/../../..", "chain1": "chain2", "chain2": "a/chain3",
    }
    for name, target in links.items():
        os.symlink(target, root / name)
    os.symlink("../up", root / "a" / "chain3")  # chain1 → chain2 → a/chain3 → ../up → outside
    os.symlink("../f", root / "a" / "lup")
    return root


@pytest.fixture
def root(tree: Path) -> Iterator[Directory]:
    d = open_preopen(str(tree))
    yield d
    d.close()


def errno_of(call: object, *args: object) -> Errno:
    with pytest.raises(WasiError) as info:
        call(*args)  # type: ignore[operator]
    return info.value.errno


def outside_untouched(tree: Path) -> None:
    outside = tree.parent / "outside"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "secret\n"
    assert (outside / "secret").stat().st_nlink == 1


# --- containment ----------------------------------------------------------------

ESCAPES = [
    "..", "../", "../outside/secret", "../..", "a/../..", "a/b/../../../outside",
    "/etc/passwd", "/", "//etc", "up/secret",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_open_of_an_escaping_path_is_eperm(root: Directory, tree: Path, path: str) -> None:
    assert errno_of(root.open, path, READ) == Errno.EPERM
    assert errno_of(root.open, path + "/x", CREATE) == Errno.EPERM
    outside_untouched(tree)


@pytest.mark.parametrize("link", ["to_etc", "to_etc_passwd", "up", "up_secret", "climb",
                                  "chain1"])
def test_following_a_symlink_that_leaves_the_root_is_eperm(root: Directory, tree: Path,
                                                           link: str) -> None:
    follow = OpenRequest(follow=True)
    assert errno_of(root.open, link, follow) == Errno.EPERM
    assert errno_of(root.filestat_at, link, True) == Errno.EPERM
    assert errno_of(root.open, link + "/", READ) == Errno.EPERM  # trailing '/' follows
    assert errno_of(root.set_times_at, link, True, 1, 1, FSTFLAGS_ATIM) == Errno.EPERM
    outside_untouched(tree)


def test_a_symlink_that_leaves_is_refused_in_the_middle_of_a_path_too(
        root: Directory, tree: Path) -> None:
    assert errno_of(root.open, "to_etc/passwd", READ) == Errno.EPERM
    assert errno_of(root.open, "up/secret", CREATE) == Errno.EPERM
    assert errno_of(root.create_directory, "up/newdir") == Errno.EPERM
    assert errno_of(root.unlink_file, "up/secret") == Errno.EPERM
    assert errno_of(root.rename, "up/secret", root, "stolen") == Errno.EPERM
    assert errno_of(root.symlink, "x", "up/planted") == Errno.EPERM
    assert errno_of(root.readlink, "up/secret") == Errno.EPERM
    outside_untouched(tree)


def test_without_follow_an_escaping_symlink_is_the_link_itself(root: Directory) -> None:
    st = root.filestat_at("to_etc", False)
    assert st.filetype == Filetype.SYMBOLIC_LINK and st.size == len("/etc")
    assert errno_of(root.open, "to_etc", READ) == Errno.ELOOP  # O_NOFOLLOW semantics
    assert root.readlink("up_secret") == b"../outside/secret"


@pytest.mark.parametrize("link", ["loop1", "self"])
def test_symlink_loops_are_eloop(root: Directory, link: str) -> None:
    assert errno_of(root.open, link, OpenRequest(follow=True)) == Errno.ELOOP
    assert errno_of(root.filestat_at, link, True) == Errno.ELOOP
    assert errno_of(root.open, link + "/x", READ) == Errno.ELOOP


def test_a_long_but_finite_symlink_chain_resolves_and_one_more_is_eloop(
        root: Directory, tree: Path) -> None:
    (tree / "c0").write_text("end")
    for i in range(1, MAX_SYMLINK_EXPANSIONS + 2):
        os.symlink(f"c{i - 1}", tree / f"c{i}")
    ok = root.open(f"c{MAX_SYMLINK_EXPANSIONS}", OpenRequest(follow=True))
    assert isinstance(ok, RegularFile) and ok.read(10) == b"end"
    ok.close()
    too_far = f"c{MAX_SYMLINK_EXPANSIONS + 1}"
    assert errno_of(root.open, too_far, OpenRequest(follow=True)) == Errno.ELOOP


def test_hard_links_cannot_reach_outside(root: Directory, tree: Path) -> None:
    assert errno_of(root.link, "../outside/secret", False, root, "hl") == Errno.EPERM
    assert errno_of(root.link, "up/secret", False, root, "hl") == Errno.EPERM
    assert errno_of(root.link, "up_secret", True, root, "hl") == Errno.EINVAL  # no follow
    assert errno_of(root.link, "f", False, root, "../hl") == Errno.EPERM
    # Linking the symlink itself is allowed: it is still just a symlink.
    root.link("up_secret", False, root, "hl")
    assert os.readlink(tree / "hl") == "../outside/secret"
    assert errno_of(root.open, "hl", OpenRequest(follow=True)) == Errno.EPERM
    outside_untouched(tree)


def test_absolute_symlink_targets_cannot_be_created(root: Directory, tree: Path) -> None:
    assert errno_of(root.symlink, "/etc/passwd", "abs") == Errno.EPERM
    assert not (tree / "abs").exists()
    root.symlink("../outside", "rel")  # relative targets are fine until followed
    assert errno_of(root.filestat_at, "rel/secret", True) == Errno.EPERM


def test_a_subdirectory_fd_is_its_own_root(root: Directory, tree: Path) -> None:
    sub = root.open("a", READ)
    assert isinstance(sub, Directory)
    try:
        assert errno_of(sub.open, "../f", READ) == Errno.EPERM
        assert errno_of(sub.open, "lup", OpenRequest(follow=True)) == Errno.EPERM
        assert sub.filestat_at("b/..", False).filetype == Filetype.DIRECTORY
        lup = root.open("a/lup", OpenRequest(follow=True))  # fine from the root
        assert isinstance(lup, RegularFile) and lup.read(6) == b"hello\n"
        lup.close()
    finally:
        sub.close()


def test_moving_a_directory_during_use_does_not_let_dotdot_escape(
        root: Directory, tree: Path) -> None:
    sub = root.open("a/b", READ)
    assert isinstance(sub, Directory)
    try:
        os.rename(tree / "a" / "b", tree.parent / "moved_out")  # the host moves it away
        assert errno_of(sub.open, "../g", READ) == Errno.EPERM
        assert errno_of(sub.open, "..", READ) == Errno.EPERM
    finally:
        sub.close()


# --- path syntax ------------------------------------------------------------------

@pytest.mark.parametrize("path,expected", [
    ("a", ("", "a")), ("a/b", ("a", "b")), ("a//b", ("a", "b")), ("/a", ("/", "a")),
    ("a/", ("a/", ".")), ("a/.", ("a/.", ".")), ("a/..", ("a/..", ".")), (".", ("", ".")),
    ("..", ("..", ".")), ("../a", ("..", "a")), ("./a", (".", "a")),
])
def test_split_parent_never_yields_dotdot(path: str, expected: tuple[str, str]) -> None:
    assert split_parent(path) == expected


def test_empty_paths_are_enoent(root: Directory) -> None:
    assert errno_of(root.open, "", READ) == Errno.ENOENT
    assert errno_of(root.filestat_at, "", False) == Errno.ENOENT
    assert errno_of(root.create_directory, "") == Errno.ENOENT


def test_trailing_slash_semantics(root: Directory) -> None:
    assert errno_of(root.open, "f/", READ) == Errno.ENOTDIR
    assert errno_of(root.filestat_at, "lf/", False) == Errno.ENOTDIR
    assert root.filestat_at("la/", False).filetype == Filetype.DIRECTORY  # '/' follows
    assert errno_of(root.open, "new/", CREATE) == Errno.EISDIR
    root.create_directory("made/")  # mkdir ignores trailing slashes
    assert errno_of(root.remove_directory, "made/") == Errno.EINVAL  # as wasmtime: "made/."
    root.remove_directory("made")
    assert errno_of(root.unlink_file, "a/") == Errno.EISDIR


# --- opening and file I/O ----------------------------------------------------------

def test_open_read_write_seek_and_stat(root: Directory, tree: Path) -> None:
    f = root.open("new.txt", OpenRequest(oflags=OFLAGS_CREAT | OFLAGS_EXCL, read=True,
                                         write=True))
    assert isinstance(f, RegularFile)
    try:
        assert f.write(b"hello world") == 11
        assert f.tell() == 11
        assert f.seek(0, 0) == 0 and f.read(5) == b"hello"
        assert f.pread(5, 6) == b"world" and f.tell() == 5
        assert f.pwrite(b"W", 6) == 1 and f.tell() == 5
        assert f.seek(-1, 2) == 10
        assert errno_of(f.seek, -100, 1) == Errno.EINVAL
        f.set_size(3)
        st = f.filestat()
        assert (st.filetype, st.size, st.nlink) == (Filetype.REGULAR_FILE, 3, 1)
        assert st.ino == (tree / "new.txt").stat().st_ino
    finally:
        f.close()
    assert (tree / "new.txt").read_bytes() == b"hel"
    assert errno_of(root.open, "new.txt", OpenRequest(oflags=OFLAGS_CREAT | OFLAGS_EXCL)) \
        == Errno.EEXIST


def test_access_mode_comes_from_the_requested_rights(root: Directory) -> None:
    ro = root.open("f", OpenRequest(read=True))
    wo = root.open("f", OpenRequest(read=False, write=True))
    assert isinstance(ro, RegularFile) and isinstance(wo, RegularFile)
    try:
        assert errno_of(ro.write, b"x") == Errno.EBADF
        assert errno_of(ro.set_size, 0) == Errno.EINVAL  # as ftruncate(2) on O_RDONLY
        assert errno_of(wo.read, 1) == Errno.EBADF
        assert (ro.readable, ro.writable, wo.readable, wo.writable) == (True, False, False, True)
    finally:
        ro.close()
        wo.close()
    neither = root.open("f", OpenRequest(read=False, write=False))  # reads, as wasmtime
    trunc = root.open("f", OpenRequest(oflags=OFLAGS_TRUNC, read=True))  # TRUNC implies write
    assert isinstance(neither, RegularFile) and isinstance(trunc, RegularFile)
    assert neither.readable and trunc.writable
    neither.close()
    trunc.close()


def test_append_mode_and_fdflags(root: Directory, tree: Path) -> None:
    f = root.open("f", OpenRequest(fdflags=FDFLAGS_APPEND, read=True, write=True))
    assert isinstance(f, RegularFile)
    try:
        assert f.fdflags == FDFLAGS_APPEND
        f.seek(0, 0)
        f.write(b"A")
        assert f.tell() == 7
        f.pwrite(b"P", 0)  # Linux and wasmtime: pwrite on an append fd appends...
        assert f.tell() == 7  # ...and leaves the position alone
        assert errno_of(f.set_fdflags, FDFLAGS_SYNC) == Errno.EINVAL
        f.set_fdflags(FDFLAGS_NONBLOCK)
        assert f.fdflags == FDFLAGS_NONBLOCK
        f.seek(0, 0)
        f.write(b"H")
    finally:
        f.close()
    assert (tree / "f").read_bytes() == b"Hello\nAP"
    assert errno_of(root.open, "f", OpenRequest(fdflags=FDFLAGS_SYNC)) == Errno.ENOTSUP


def test_oflags_combinations_match_wasmtime(root: Directory) -> None:
    assert errno_of(root.open, "a", OpenRequest(oflags=OFLAGS_DIRECTORY | OFLAGS_CREAT)) \
        == Errno.EINVAL
    assert errno_of(root.open, "f", OpenRequest(oflags=OFLAGS_DIRECTORY)) == Errno.ENOTDIR
    assert errno_of(root.open, "a", OpenRequest(write=True)) == Errno.EISDIR
    assert errno_of(root.open, "a/.", CREATE) == Errno.EISDIR
    assert errno_of(root.open, "a/.", OpenRequest(oflags=OFLAGS_CREAT | OFLAGS_EXCL)) \
        == Errno.EEXIST
    assert errno_of(root.open, "la", OpenRequest(oflags=OFLAGS_DIRECTORY)) == Errno.ELOOP
    dangling = root.open("dangling", OpenRequest(follow=True, oflags=OFLAGS_CREAT))
    assert isinstance(dangling, RegularFile)  # creates the target, inside the root
    dangling.close()
    assert errno_of(root.open, "dangling", CREATE) == Errno.ELOOP


def test_fifos_are_not_opened(root: Directory, tree: Path) -> None:
    os.mkfifo(tree / "fifo")
    assert errno_of(root.open, "fifo", READ) == Errno.ENOTSUP
    assert root.filestat_at("fifo", False).filetype == Filetype.UNKNOWN


def test_directory_fd_calls_are_ebadf_like_wasmtime(root: Directory) -> None:
    assert errno_of(root.sync) == Errno.EBADF
    assert errno_of(root.set_fdflags, 0) == Errno.EBADF
    assert errno_of(root.set_size, 0) == Errno.EBADF
    assert root.filestat().filetype == Filetype.DIRECTORY


# --- directory operations -------------------------------------------------------------

def test_mkdir_rmdir_unlink_rename(root: Directory, tree: Path) -> None:
    root.create_directory("d")
    assert errno_of(root.create_directory, "d") == Errno.EEXIST
    assert errno_of(root.create_directory, "x/y") == Errno.ENOENT
    assert errno_of(root.remove_directory, "a") == Errno.ENOTEMPTY
    assert errno_of(root.remove_directory, "f") == Errno.ENOTDIR
    root.rename("f", root, "d/f2")
    assert (tree / "d" / "f2").read_text() == "hello\n"
    assert errno_of(root.rename, "a", root, "a/b/c") == Errno.EINVAL
    assert errno_of(root.rename, "lf", root, "lf/") == Errno.ENOTDIR
    root.unlink_file("d/f2")
    root.remove_directory("d")
    root.unlink_file("la")  # the symlink, not the directory
    assert (tree / "a").is_dir()
    assert errno_of(root.unlink_file, "a") == Errno.EISDIR


def test_symlink_readlink_link(root: Directory, tree: Path) -> None:
    root.symlink("a/g", "sl")
    assert root.readlink("sl") == b"a/g"
    assert errno_of(root.readlink, "f") == Errno.EINVAL
    assert errno_of(root.symlink, "x", "sl") == Errno.EEXIST
    root.link("f", False, root, "hard")
    assert (tree / "hard").stat().st_ino == (tree / "f").stat().st_ino
    assert root.filestat_at("f", False).nlink == 2
    assert errno_of(root.link, "a", False, root, "dirlink") == Errno.EPERM


def test_filestat_follows_only_when_asked(root: Directory) -> None:
    assert root.filestat_at("lag", False).filetype == Filetype.SYMBOLIC_LINK
    st = root.filestat_at("lag", True)
    assert (st.filetype, st.size) == (Filetype.REGULAR_FILE, 5)
    assert errno_of(root.filestat_at, "dangling", True) == Errno.ENOENT
    assert root.filestat_at("a/b/../..", False).filetype == Filetype.DIRECTORY


def test_set_times_explicit_now_and_omit(root: Directory, tree: Path) -> None:
    root.set_times_at("f", False, 1_000_000_007, 2_000_000_009, FSTFLAGS_ATIM | FSTFLAGS_MTIM)
    st = os.stat(tree / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_007, 2_000_000_009)
    root.set_times_at("f", False, 5, 0, FSTFLAGS_ATIM)  # mtime left alone
    st = os.stat(tree / "f")
    assert (st.st_atime_ns, st.st_mtime_ns) == (5, 2_000_000_009)
    root.set_times_at("f", False, 0, 0, FSTFLAGS_MTIM_NOW)
    assert os.stat(tree / "f").st_mtime_ns > 2_000_000_009
    assert errno_of(root.set_times_at, "f", False, 1, 1, FSTFLAGS_ATIM | FSTFLAGS_ATIM_NOW) \
        == Errno.EINVAL
    # Without follow a symlink's own times change; with follow, the target's.
    root.set_times_at("lf", False, 7, 7, FSTFLAGS_ATIM | FSTFLAGS_MTIM)
    assert os.stat(tree / "lf", follow_symlinks=False).st_mtime_ns == 7
    root.set_times_at("lf", True, 9, 9, FSTFLAGS_ATIM | FSTFLAGS_MTIM)
    assert os.stat(tree / "f").st_mtime_ns == 9
    f = root.open("f", READ)
    f.set_times(0, 11, FSTFLAGS_MTIM)
    f.close()
    assert os.stat(tree / "f").st_mtime_ns == 11


def test_readdir_lists_dot_entries_first_with_stable_cookies(root: Directory,
                                                              tree: Path) -> None:
    sub = root.open("a", READ)
    assert isinstance(sub, Directory)
    try:
        entries = sub.readdir(0)
        names = [e.name for e in entries]
        assert names[:2] == [b".", b".."]
        assert sorted(names[2:]) == [b"b", b"chain3", b"g", b"lup"]
        assert [e.next for e in entries] == [1, 2, 3, 4, 5, 6]
        types = {e.name: e.filetype for e in entries}
        assert types[b"b"] == Filetype.DIRECTORY and types[b"lup"] == Filetype.SYMBOLIC_LINK
        assert types[b"g"] == Filetype.REGULAR_FILE
        inos = {e.name: e.ino for e in entries}
        assert inos[b"g"] == (tree / "a" / "g").stat().st_ino
        # Resuming from a cookie continues the same snapshot, even if the directory changed.
        (tree / "a" / "new").write_text("")
        assert sub.readdir(3) == entries[3:]
        assert sub.readdir(99) == []
        assert len(sub.readdir(0)) == 7  # a fresh pass sees the new entry
    finally:
        sub.close()


def test_non_utf8_names_are_eilseq(root: Directory, tree: Path) -> None:
    os.symlink(b"\xff\xfe", os.path.join(os.fsencode(tree), b"badlink"))
    assert errno_of(root.readlink, "badlink") == Errno.EILSEQ
    (Path(os.fsdecode(os.path.join(os.fsencode(tree), b"\xffname")))).write_text("")
    assert errno_of(root.readdir, 0) == Errno.EILSEQ
