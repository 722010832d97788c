"""WASI preview1 constants and struct layouts (wasi_snapshot_preview1).

Values are the ones in WebAssembly/WASI `phases/snapshot/witx/typenames.witx`
(preview1): errno, filetype, flags, rights, and the byte layouts of the structs
the host writes into guest memory. Pure data: this module touches nothing.
"""

from __future__ import annotations

import enum
import struct


class Errno(enum.IntEnum):
    """WASI errno (u16). Same numbering WASIX uses."""

    SUCCESS = 0
    E2BIG = 1
    EACCES = 2
    EADDRINUSE = 3
    EADDRNOTAVAIL = 4
    EAFNOSUPPORT = 5
    EAGAIN = 6
    EALREADY = 7
    EBADF = 8
    EBADMSG = 9
    EBUSY = 10
    ECANCELED = 11
    ECHILD = 12
    ECONNABORTED = 13
    ECONNREFUSED = 14
    ECONNRESET = 15
    EDEADLK = 16
    EDESTADDRREQ = 17
    EDOM = 18
    EDQUOT = 19
    EEXIST = 20
    EFAULT = 21
    EFBIG = 22
    EHOSTUNREACH = 23
    EIDRM = 24
    EILSEQ = 25
    EINPROGRESS = 26
    EINTR = 27
    EINVAL = 28
    EIO = 29
    EISCONN = 30
    EISDIR = 31
    ELOOP = 32
    EMFILE = 33
    EMLINK = 34
    EMSGSIZE = 35
    EMULTIHOP = 36
    ENAMETOOLONG = 37
    ENETDOWN = 38
    ENETRESET = 39
    ENETUNREACH = 40
    ENFILE = 41
    ENOBUFS = 42
    ENODEV = 43
    ENOENT = 44
    ENOEXEC = 45
    ENOLCK = 46
    ENOLINK = 47
    ENOMEM = 48
    ENOMSG = 49
    ENOPROTOOPT = 50
    ENOSPC = 51
    ENOSYS = 52
    ENOTCONN = 53
    ENOTDIR = 54
    ENOTEMPTY = 55
    ENOTRECOVERABLE = 56
    ENOTSOCK = 57
    ENOTSUP = 58
    ENOTTY = 59
    ENXIO = 60
    EOVERFLOW = 61
    EOWNERDEAD = 62
    EPERM = 63
    EPIPE = 64
    EPROTO = 65
    EPROTONOSUPPORT = 66
    EPROTOTYPE = 67
    ERANGE = 68
    EROFS = 69
    ESPIPE = 70
    ESRCH = 71
    ESTALE = 72
    ETIMEDOUT = 73
    ETXTBSY = 74
    EXDEV = 75
    ENOTCAPABLE = 76


class WasiError(Exception):
    """Raised inside host-call implementations to return an errno to the guest."""

    def __init__(self, errno: Errno) -> None:
        super().__init__(errno.name)
        self.errno = errno


class Filetype(enum.IntEnum):
    UNKNOWN = 0
    BLOCK_DEVICE = 1
    CHARACTER_DEVICE = 2
    DIRECTORY = 3
    REGULAR_FILE = 4
    SOCKET_DGRAM = 5
    SOCKET_STREAM = 6
    SYMBOLIC_LINK = 7


# fdflags (u16)
FDFLAGS_APPEND = 1 << 0
FDFLAGS_DSYNC = 1 << 1
FDFLAGS_NONBLOCK = 1 << 2
FDFLAGS_RSYNC = 1 << 3
FDFLAGS_SYNC = 1 << 4
FDFLAGS_ALL = 0x1F

# oflags (u16)
OFLAGS_CREAT = 1 << 0
OFLAGS_DIRECTORY = 1 << 1
OFLAGS_EXCL = 1 << 2
OFLAGS_TRUNC = 1 << 3

# lookupflags (u32)
LOOKUPFLAGS_SYMLINK_FOLLOW = 1 << 0

# fstflags (u16)
FSTFLAGS_ATIM = 1 << 0
FSTFLAGS_ATIM_NOW = 1 << 1
FSTFLAGS_MTIM = 1 << 2
FSTFLAGS_MTIM_NOW = 1 << 3


class Rights(enum.IntFlag):
    FD_DATASYNC = 1 << 0
    FD_READ = 1 << 1
    FD_SEEK = 1 << 2
    FD_FDSTAT_SET_FLAGS = 1 << 3
    FD_SYNC = 1 << 4
    FD_TELL = 1 << 5
    FD_WRITE = 1 << 6
    FD_ADVISE = 1 << 7
    FD_ALLOCATE = 1 << 8
    PATH_CREATE_DIRECTORY = 1 << 9
    PATH_CREATE_FILE = 1 << 10
    PATH_LINK_SOURCE = 1 << 11
    PATH_LINK_TARGET = 1 << 12
    PATH_OPEN = 1 << 13
    FD_READDIR = 1 << 14
    PATH_READLINK = 1 << 15
    PATH_RENAME_SOURCE = 1 << 16
    PATH_RENAME_TARGET = 1 << 17
    PATH_FILESTAT_GET = 1 << 18
    PATH_FILESTAT_SET_SIZE = 1 << 19
    PATH_FILESTAT_SET_TIMES = 1 << 20
    FD_FILESTAT_GET = 1 << 21
    FD_FILESTAT_SET_SIZE = 1 << 22
    FD_FILESTAT_SET_TIMES = 1 << 23
    PATH_SYMLINK = 1 << 24
    PATH_REMOVE_DIRECTORY = 1 << 25
    PATH_UNLINK_FILE = 1 << 26
    POLL_FD_READWRITE = 1 << 27
    SOCK_SHUTDOWN = 1 << 28
    SOCK_ACCEPT = 1 << 29


RIGHTS_ALL = (1 << 30) - 1

RIGHTS_REGULAR_FILE_BASE = (
    Rights.FD_DATASYNC | Rights.FD_READ | Rights.FD_SEEK | Rights.FD_FDSTAT_SET_FLAGS
    | Rights.FD_SYNC | Rights.FD_TELL | Rights.FD_WRITE | Rights.FD_ADVISE | Rights.FD_ALLOCATE
    | Rights.FD_FILESTAT_GET | Rights.FD_FILESTAT_SET_SIZE | Rights.FD_FILESTAT_SET_TIMES
    | Rights.POLL_FD_READWRITE
)
RIGHTS_DIRECTORY_BASE = (
    Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_SYNC | Rights.FD_ADVISE
    | Rights.PATH_CREATE_DIRECTORY | Rights.PATH_CREATE_FILE | Rights.PATH_LINK_SOURCE
    | Rights.PATH_LINK_TARGET | Rights.PATH_OPEN | Rights.FD_READDIR | Rights.PATH_READLINK
    | Rights.PATH_RENAME_SOURCE | Rights.PATH_RENAME_TARGET | Rights.PATH_FILESTAT_GET
    | Rights.PATH_FILESTAT_SET_SIZE | Rights.PATH_FILESTAT_SET_TIMES | Rights.FD_FILESTAT_GET
    | Rights.FD_FILESTAT_SET_TIMES | Rights.PATH_SYMLINK | Rights.PATH_REMOVE_DIRECTORY
    | Rights.PATH_UNLINK_FILE | Rights.POLL_FD_READWRITE
)
RIGHTS_DIRECTORY_INHERITING = RIGHTS_DIRECTORY_BASE | RIGHTS_REGULAR_FILE_BASE
RIGHTS_TTY_BASE = (
    Rights.FD_READ | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_WRITE | Rights.FD_FILESTAT_GET
    | Rights.POLL_FD_READWRITE
)
RIGHTS_SOCKET_BASE = (
    Rights.FD_READ | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_WRITE | Rights.FD_FILESTAT_GET
    | Rights.POLL_FD_READWRITE | Rights.SOCK_SHUTDOWN | Rights.SOCK_ACCEPT
)


class Clockid(enum.IntEnum):
    REALTIME = 0
    MONOTONIC = 1
    PROCESS_CPUTIME_ID = 2
    THREAD_CPUTIME_ID = 3


class Whence(enum.IntEnum):
    SET = 0
    CUR = 1
    END = 2


class Eventtype(enum.IntEnum):
    CLOCK = 0
    FD_READ = 1
    FD_WRITE = 2


SUBCLOCKFLAGS_ABSTIME = 1
EVENTRWFLAGS_HANGUP = 1

# riflags / roflags / siflags / sdflags
RIFLAGS_RECV_PEEK = 1
RIFLAGS_RECV_WAITALL = 2
ROFLAGS_RECV_DATA_TRUNCATED = 1
SDFLAGS_RD = 1
SDFLAGS_WR = 2

PREOPENTYPE_DIR = 0

# Struct layouts (little-endian, wasm32).
IOVEC = struct.Struct("<II")  # buf, buf_len: 8 bytes
FDSTAT = struct.Struct("<BxHxxxxQQ")  # filetype, flags, rights_base, rights_inheriting: 24
FILESTAT = struct.Struct("<QQB7xQQQQQ")  # dev, ino, filetype, nlink, size, atim, mtim, ctim: 64
DIRENT = struct.Struct("<QQIB3x")  # d_next, d_ino, d_namlen, d_type: 24
PRESTAT = struct.Struct("<B3xI")  # tag, pr_name_len: 8
SUBSCRIPTION_HEAD = struct.Struct("<QB")  # userdata, tag (union at +16): 48 bytes total
SUBSCRIPTION_CLOCK = struct.Struct("<IxxxxQQH")  # at +16: id, timeout, precision, flags
SUBSCRIPTION_FD = struct.Struct("<I")  # at +16: file_descriptor
SUBSCRIPTION_SIZE = 48
EVENT = struct.Struct("<QHBxxxxxQH6x")  # userdata, error, type, nbytes, flags: 32
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

assert FDSTAT.size == 24 and FILESTAT.size == 64 and DIRENT.size == 24
assert PRESTAT.size == 8 and EVENT.size == 32
