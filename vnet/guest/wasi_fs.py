"""wasi_snapshot_preview1: the path_* filesystem calls and fd_readdir.

Each function decodes its arguments from guest memory (`ctx.mem`), finds the
directory fd in the guest's fd table (`ctx.fds`), checks that fd's rights,
and hands the work to `vnet.guest.fs`, which alone touches the host
filesystem. The generic fd calls (read, write, seek, filestat, ...) live in
`wasi_core` and reach files through `FileDescription` methods.

Errno values follow wasmtime's own preview1 implementation, which the guest
tests compare against: a non-directory fd is EBADF (ENOTDIR for a file given
to path_open), an escape from the directory is EPERM. Unlike wasmtime, rights
are enforced: a missing right on the directory fd is ENOTCAPABLE (preopens
carry every directory right, so this only shows after fd_fdstat_set_rights),
and invalid flag bits are EINVAL where wasmtime traps.
"""

from __future__ import annotations

from .abi import host_function
from .context import GuestContext
from .fs import Directory, OpenRequest, RegularFile
from .wasi_types import (
    DIRENT,
    FDFLAGS_ALL,
    FILESTAT,
    LOOKUPFLAGS_SYMLINK_FOLLOW,
    OFLAGS_CREAT,
    OFLAGS_DIRECTORY,
    OFLAGS_EXCL,
    OFLAGS_TRUNC,
    RIGHTS_DIRECTORY_BASE,
    RIGHTS_REGULAR_FILE_BASE,
    Errno,
    Rights,
    WasiError,
)

M = "wasi_snapshot_preview1"

_OFLAGS_ALL = OFLAGS_CREAT | OFLAGS_DIRECTORY | OFLAGS_EXCL | OFLAGS_TRUNC


def _directory(ctx: GuestContext, fd: int, rights: int, file_errno: Errno = Errno.EBADF,
               ) -> tuple[Directory, int]:
    """The Directory behind fd and that fd's inheriting rights.

    EBADF if fd is not open or not a directory (`file_errno` if it is a
    regular file), ENOTCAPABLE if the fd lacks `rights`.
    """
    entry = ctx.fds.entry(fd)
    description = entry.description
    if not isinstance(description, Directory):
        raise WasiError(file_errno if isinstance(description, RegularFile) else Errno.EBADF)
    if entry.rights_base & rights != rights:
        raise WasiError(Errno.ENOTCAPABLE)
    return description, entry.rights_inheriting


def _follow(lookupflags: int) -> bool:
    if lookupflags & ~LOOKUPFLAGS_SYMLINK_FOLLOW:
        raise WasiError(Errno.EINVAL)
    return bool(lookupflags & LOOKUPFLAGS_SYMLINK_FOLLOW)


def _path(ctx: GuestContext, ptr: int, length: int) -> str:
    return ctx.mem.read_string(ptr, length)


@host_function(M, "path_open", "iiiiiIIii")
def path_open(ctx: GuestContext, fd: int, dirflags: int, path_ptr: int, path_len: int,
              oflags: int, rights_base: int, rights_inheriting: int, fdflags: int,
              opened_fd_ptr: int) -> int:
    """Open a file or directory. Read/write access comes from FD_READ/FD_WRITE in
    rights_base (as under wasmtime); the new fd's rights are its type's rights
    masked by the directory's inheriting rights and by that access."""
    path = _path(ctx, path_ptr, path_len)
    follow = _follow(dirflags)
    if oflags & ~_OFLAGS_ALL or fdflags & ~FDFLAGS_ALL:
        raise WasiError(Errno.EINVAL)
    needed = Rights.PATH_OPEN
    if oflags & OFLAGS_CREAT:
        needed |= Rights.PATH_CREATE_FILE
    if oflags & OFLAGS_TRUNC:
        needed |= Rights.PATH_FILESTAT_SET_SIZE
    directory, inheriting = _directory(ctx, fd, needed, file_errno=Errno.ENOTDIR)
    read = bool(rights_base & Rights.FD_READ)
    write = bool(rights_base & Rights.FD_WRITE)
    if (read and not inheriting & Rights.FD_READ) or (write and not inheriting & Rights.FD_WRITE):
        raise WasiError(Errno.ENOTCAPABLE)
    ctx.mem.check(opened_fd_ptr, 4)
    opened = directory.open(path, OpenRequest(follow, oflags, fdflags, read, write))
    if isinstance(opened, Directory):
        base = RIGHTS_DIRECTORY_BASE & inheriting
        child_inheriting = inheriting
    else:
        base = RIGHTS_REGULAR_FILE_BASE & inheriting
        if not opened.readable:
            base &= ~Rights.FD_READ
        if not opened.writable:
            base &= ~Rights.FD_WRITE
        child_inheriting = base
    try:
        new_fd = ctx.fds.add(opened, int(base), int(child_inheriting))
    except WasiError:
        opened.close()
        raise
    ctx.mem.write_u32(opened_fd_ptr, new_fd)
    return Errno.SUCCESS


@host_function(M, "path_create_directory", "iii")
def path_create_directory(ctx: GuestContext, fd: int, path_ptr: int, path_len: int) -> int:
    directory, _ = _directory(ctx, fd, Rights.PATH_CREATE_DIRECTORY)
    directory.create_directory(_path(ctx, path_ptr, path_len))
    return Errno.SUCCESS


@host_function(M, "path_remove_directory", "iii")
def path_remove_directory(ctx: GuestContext, fd: int, path_ptr: int, path_len: int) -> int:
    directory, _ = _directory(ctx, fd, Rights.PATH_REMOVE_DIRECTORY)
    directory.remove_directory(_path(ctx, path_ptr, path_len))
    return Errno.SUCCESS


@host_function(M, "path_unlink_file", "iii")
def path_unlink_file(ctx: GuestContext, fd: int, path_ptr: int, path_len: int) -> int:
    directory, _ = _directory(ctx, fd, Rights.PATH_UNLINK_FILE)
    directory.unlink_file(_path(ctx, path_ptr, path_len))
    return Errno.SUCCESS


@host_function(M, "path_rename", "iiiiii")
def path_rename(ctx: GuestContext, fd: int, old_ptr: int, old_len: int, new_fd: int,
                new_ptr: int, new_len: int) -> int:
    old_dir, _ = _directory(ctx, fd, Rights.PATH_RENAME_SOURCE)
    new_dir, _ = _directory(ctx, new_fd, Rights.PATH_RENAME_TARGET)
    old_dir.rename(_path(ctx, old_ptr, old_len), new_dir, _path(ctx, new_ptr, new_len))
    return Errno.SUCCESS


@host_function(M, "path_symlink", "iiiii")
def path_symlink(ctx: GuestContext, old_ptr: int, old_len: int, fd: int, new_ptr: int,
                 new_len: int) -> int:
    directory, _ = _directory(ctx, fd, Rights.PATH_SYMLINK)
    directory.symlink(_path(ctx, old_ptr, old_len), _path(ctx, new_ptr, new_len))
    return Errno.SUCCESS


@host_function(M, "path_readlink", "iiiiii")
def path_readlink(ctx: GuestContext, fd: int, path_ptr: int, path_len: int, buf: int,
                  buf_len: int, bufused_ptr: int) -> int:
    """The link's target, cut to buf_len bytes (no terminating NUL)."""
    directory, _ = _directory(ctx, fd, Rights.PATH_READLINK)
    path = _path(ctx, path_ptr, path_len)
    ctx.mem.check(buf, buf_len)
    ctx.mem.check(bufused_ptr, 4)
    target = directory.readlink(path)[:buf_len]
    ctx.mem.write(buf, target)
    ctx.mem.write_u32(bufused_ptr, len(target))
    return Errno.SUCCESS


@host_function(M, "path_link", "iiiiiii")
def path_link(ctx: GuestContext, old_fd: int, old_flags: int, old_ptr: int, old_len: int,
              new_fd: int, new_ptr: int, new_len: int) -> int:
    follow = _follow(old_flags)
    old_dir, _ = _directory(ctx, old_fd, Rights.PATH_LINK_SOURCE)
    new_dir, _ = _directory(ctx, new_fd, Rights.PATH_LINK_TARGET)
    old_dir.link(_path(ctx, old_ptr, old_len), follow, new_dir, _path(ctx, new_ptr, new_len))
    return Errno.SUCCESS


@host_function(M, "path_filestat_get", "iiiii")
def path_filestat_get(ctx: GuestContext, fd: int, flags: int, path_ptr: int, path_len: int,
                      buf: int) -> int:
    follow = _follow(flags)
    directory, _ = _directory(ctx, fd, Rights.PATH_FILESTAT_GET)
    path = _path(ctx, path_ptr, path_len)
    ctx.mem.check(buf, FILESTAT.size)
    st = directory.filestat_at(path, follow)
    ctx.mem.pack(FILESTAT, buf, st.dev, st.ino, int(st.filetype), st.nlink, st.size,
                 st.atim, st.mtim, st.ctim)
    return Errno.SUCCESS


@host_function(M, "path_filestat_set_times", "iiiiIIi")
def path_filestat_set_times(ctx: GuestContext, fd: int, flags: int, path_ptr: int,
                            path_len: int, atim: int, mtim: int, fst_flags: int) -> int:
    follow = _follow(flags)
    directory, _ = _directory(ctx, fd, Rights.PATH_FILESTAT_SET_TIMES)
    directory.set_times_at(_path(ctx, path_ptr, path_len), follow, atim, mtim, fst_flags)
    return Errno.SUCCESS


@host_function(M, "fd_readdir", "iiiIi")
def fd_readdir(ctx: GuestContext, fd: int, buf: int, buf_len: int, cookie: int,
               bufused_ptr: int) -> int:
    """Directory entries from `cookie` on, packed as dirent + name, back to back.

    The buffer is filled completely when there is enough to fill it, so the
    last entry may be cut anywhere (even inside its header); bufused ==
    buf_len tells the guest to call again from the last whole entry's d_next.
    """
    directory, _ = _directory(ctx, fd, Rights.FD_READDIR)
    ctx.mem.check(buf, buf_len)
    ctx.mem.check(bufused_ptr, 4)
    packed = bytearray()
    for entry in directory.readdir(cookie):
        if len(packed) >= buf_len:
            break
        packed += DIRENT.pack(entry.next, entry.ino, len(entry.name), int(entry.filetype))
        packed += entry.name
    used = min(len(packed), buf_len)
    ctx.mem.write(buf, packed[:used])
    ctx.mem.write_u32(bufused_ptr, used)
    return Errno.SUCCESS
