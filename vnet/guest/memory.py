"""Bounds-checked access to one guest's linear memory from host calls.

`GuestMemory` wraps the exported `memory` of an instance. Every read and write
is checked against the memory's current size; a pointer or length outside it
raises `GuestFault`, which the ABI bridge turns into EFAULT. wasm32 linear
memory only grows, and wasmtime reserves its address range up front on 64-bit
hosts, so the base pointer is cached and the size is re-read only when a check
fails. Touches only the guest's memory, through wasmtime's C API.

Vectored I/O is bounded as on Linux: an iovec array longer than IOV_MAX
(1024) is EINVAL before anything is read, and `gather` copies only the
byte range of the iovec stream that a call can use (never the sum of
the lengths when they overlap the same region many times).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Iterator, Sequence
from typing import Final

from wasmtime import Memory, Store
from wasmtime import _ffi as ffi

from .wasi_types import IOVEC, Errno, WasiError

# Final: compiled, these are read without a lookup in the module's globals
_U16: Final = struct.Struct("<H")
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_IOVEC: Final = IOVEC
_IOVEC_SIZE: Final = IOVEC.size
# ... and their methods bound once: compiled, `_U32.pack_into(...)` looks the method up
# on every call
_U16_PACK: Final = _U16.pack_into
_U32_PACK: Final = _U32.pack_into
_U32_UNPACK: Final = _U32.unpack_from
_U64_PACK: Final = _U64.pack_into
_IOVEC_UNPACK: Final = IOVEC.unpack_from

IOV_MAX: Final = 1024  # Linux UIO_MAXIOV: more iovecs in one call is EINVAL
MAX_RW_COUNT: Final = 0x7FFFF000  # Linux: one read/write moves at most this many bytes


def iovecs_total(iovs: list[tuple[int, int]]) -> int:
    """The sum of the iovecs' lengths."""
    if len(iovs) == 1:
        return iovs[0][1]
    return sum([n for _, n in iovs])


#: wasmtime_memory_data_size without the binding's Python wrapper (GuestMemory._refresh),
#: taking both pointers as plain addresses (c_void_p converts an int in a few steps, where
#: a typed POINTER argument costs twice the call), and keeping the GIL: a ctypes function
#: of a plain library releases it for the call, and another thread may take it then —
#: a thread switch in the middle of a host call, for a call that takes nanoseconds.
_data_size = ctypes.PYFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p)(
    ctypes.cast(ffi.dll.wasmtime_memory_data_size, ctypes.c_void_p).value or 0)


class GuestFault(Exception):
    """A guest pointer or length points outside linear memory (→ EFAULT)."""


class GuestMemory:
    """A view of one instance's linear memory with checked accessors."""

    __slots__ = ("_base", "_context", "_context_address", "_memory", "_memory_address",
                 "_memory_ref", "_size", "_store", "_view", "known_size")

    def __init__(self, store: Store, memory: Memory) -> None:
        self._store = store  # the context pointer below lives only as long as the store
        self._context = store._context()
        self._memory = memory._memory  # kept: `_memory_address` points into it
        self._memory_ref = ctypes.byref(self._memory)
        # the two as addresses, for the size query `_refresh` makes (often)
        self._context_address: int = ctypes.cast(self._context, ctypes.c_void_p).value or 0
        self._memory_address: int = ctypes.addressof(self._memory)
        self._size = 0
        #: The size last seen by this guest's own thread (safe to read from any thread):
        #: a plain attribute, since every host call compares it against --max-memory.
        self.known_size = 0
        self._base = 0
        self._view: memoryview = memoryview(b"")
        self._refresh()

    def _refresh(self) -> None:
        """Re-read the memory's size; its base too, but only when the size changed
        (a memory moves, if ever, only when it grows): one C call when nothing did."""
        size: int = _data_size(self._context_address, self._memory_address)
        if size == self._size and size:
            return
        ref = self._memory_ref
        base = ctypes.cast(ffi.wasmtime_memory_data(self._context, ref), ctypes.c_void_p).value
        if size != self._size or base != self._base:
            self._size = self.known_size = size
            self._base = base or 0
            if size:
                array = (ctypes.c_ubyte * size).from_address(self._base)
                self._view = memoryview(array).cast("B")
            else:
                self._view = memoryview(b"")

    @property
    def size(self) -> int:
        self._refresh()
        return self._size

    def check(self, ptr: int, length: int) -> None:
        """Raise GuestFault unless [ptr, ptr+length) lies inside memory."""
        if ptr < 0 or length < 0 or ptr + length > self._size:
            self._refresh()
            if ptr < 0 or length < 0 or ptr + length > self._size:
                raise GuestFault(f"guest range {ptr:#x}+{length} outside memory of {self._size}")

    def checked_view(self) -> memoryview:
        """The view of all of memory as last checked, for a call that checked its ranges.

        Index it only within ranges `check` accepted since the guest last
        ran: memory only grows, and it does not move while a host call runs.
        """
        return self._view

    # Each accessor compares against the size last seen inline and calls
    # `check` (which re-reads the size, or raises) only when that fails: a host
    # call's reads and writes cost one compare and one slice or struct op each.

    def view(self, ptr: int, length: int) -> memoryview:
        """A zero-copy window onto guest memory. Valid until the guest runs again."""
        if ptr < 0 or length < 0 or ptr + length > self._size:
            self.check(ptr, length)
        return self._view[ptr : ptr + length]

    def read(self, ptr: int, length: int) -> bytes:
        if ptr < 0 or length < 0 or ptr + length > self._size:
            self.check(ptr, length)
        return self._view[ptr : ptr + length].tobytes()

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None:
        end = ptr + len(data)
        if ptr < 0 or end > self._size:
            self.check(ptr, len(data))
        self._view[ptr:end] = data

    def unpack(self, layout: struct.Struct, ptr: int) -> tuple[int, ...]:
        if ptr < 0 or ptr + layout.size > self._size:
            self.check(ptr, layout.size)
        return layout.unpack_from(self._view, ptr)

    def pack(self, layout: struct.Struct, ptr: int, *values: int) -> None:
        if ptr < 0 or ptr + layout.size > self._size:
            self.check(ptr, layout.size)
        layout.pack_into(self._view, ptr, *values)

    def pack_each(self, layout: struct.Struct, ptr: int,
                  rows: Sequence[tuple[int, ...]]) -> None:
        """Pack `rows` one after another from `ptr` (one range check for all of them)."""
        size = layout.size
        end = ptr + size * len(rows)
        if ptr < 0 or end > self._size:
            self.check(ptr, end - ptr)
        view = self._view
        pack_into = layout.pack_into
        for row in rows:
            pack_into(view, ptr, *row)
            ptr += size

    def read_u32(self, ptr: int) -> int:
        if ptr < 0 or ptr + 4 > self._size:
            self.check(ptr, 4)
        return int(_U32_UNPACK(self._view, ptr)[0])

    def write_u32(self, ptr: int, value: int) -> None:
        if ptr < 0 or ptr + 4 > self._size:
            self.check(ptr, 4)
        _U32_PACK(self._view, ptr, value & 0xFFFFFFFF)

    def write_u64(self, ptr: int, value: int) -> None:
        if ptr < 0 or ptr + 8 > self._size:
            self.check(ptr, 8)
        _U64_PACK(self._view, ptr, value & 0xFFFFFFFFFFFFFFFF)

    def write_u16(self, ptr: int, value: int) -> None:
        if ptr < 0 or ptr + 2 > self._size:
            self.check(ptr, 2)
        _U16_PACK(self._view, ptr, value & 0xFFFF)

    def write_u8(self, ptr: int, value: int) -> None:
        if ptr < 0 or ptr >= self._size:
            self.check(ptr, 1)
        self._view[ptr] = value & 0xFF

    def read_string(self, ptr: int, length: int) -> str:
        """UTF-8 text from the guest; invalid UTF-8 raises UnicodeDecodeError (→ EILSEQ)."""
        return self.read(ptr, length).decode("utf-8")

    def iovecs(self, ptr: int, count: int) -> list[tuple[int, int]]:
        """The (buf, len) pairs of an iovec array, each checked to lie in memory.

        More than IOV_MAX iovecs is EINVAL (Linux's import_iovec), checked first.
        """
        if count > IOV_MAX:
            raise WasiError(Errno.EINVAL)
        end = ptr + count * _IOVEC_SIZE
        if end > self._size:
            self.check(ptr, count * _IOVEC_SIZE)
        if count == 1:
            buf, length = pair = _IOVEC_UNPACK(self._view, ptr)
            if buf + length > self._size:
                self.check(buf, length)
            return [pair]
        out: list[tuple[int, int]] = list(_IOVEC.iter_unpack(self._view[ptr:end]))
        for buf, length in out:
            if buf + length > self._size:
                self.check(buf, length)
        return out

    def gather(self, iovs: list[tuple[int, int]], start: int, length: int) -> bytes:
        """Bytes [start, start+length) of the stream the iovecs describe (for writes).

        Copies only that range, however long the iovecs are in total.
        """
        view = self._view
        if len(iovs) == 1:  # the common case: one buffer, one copy
            buf, n = iovs[0]
            take = min(n - start, length)
            return view[buf + start : buf + start + take].tobytes() if take > 0 else b""
        parts = []
        for buf, n in iovs:
            if length <= 0:
                break
            if start >= n:
                start -= n
                continue
            take = min(n - start, length)
            parts.append(view[buf + start : buf + start + take])
            length -= take
            start = 0
        return b"".join(parts)

    def scatter(self, iovs: list[tuple[int, int]], data: bytes | memoryview) -> int:
        """Copy data into iovec buffers in order; returns the bytes written."""
        total = len(data)
        view = self._view
        if len(iovs) == 1:  # the common case: one buffer, one copy
            buf, length = iovs[0]
            if total <= length:
                view[buf : buf + total] = data
                return total
        done = 0
        for buf, length in iovs:
            if done >= total:
                break
            n = min(length, total - done)
            view[buf : buf + n] = data[done : done + n]
            done += n
        return done

    def iter_iovecs(self, ptr: int, count: int) -> Iterator[memoryview]:
        for buf, length in self.iovecs(ptr, count):
            yield self._view[buf : buf + length]
