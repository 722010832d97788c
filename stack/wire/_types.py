"""Type aliases shared by the wire modules. Touches nothing."""

from __future__ import annotations

from typing import TypeAlias

#: Anything the parsers accept. A memoryview must have byte format ("B"/"b"/"c").
BytesLike: TypeAlias = bytes | bytearray | memoryview

#: A buffer a builder may write into (``emit_into``).
WritableBuffer: TypeAlias = bytearray | memoryview
