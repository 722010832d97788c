"""SACK bookkeeping for one TCP connection: what the peer holds, what we hold.

`SackScoreboard` is the sender's view (RFC 6675): the byte ranges above
SND.UNA the peer has selectively acknowledged, from which it answers
IsLost(), the pipe estimate and NextSeg(). `ReceiveQueue` is the receiver's
out-of-order queue: data above RCV.NXT kept until the hole before it fills,
plus the SACK blocks to report (RFC 2018 §4: the block holding the most
recent segment first) and the overlap a duplicate segment has with what is
queued (the D-SACK block of RFC 2883 §4).

RACK (RFC 8985) marks segments lost by time rather than by DupThresh; the
connection tells the scoreboard the sequence number below which every
unSACKed byte has been declared lost that way (`rack_lost_below`), and
IsLost() honours it, so RFC 6675's pipe and NextSeg() follow RACK's
verdicts. `dupthresh` starts at RFC 6675's 3 and grows, as Linux's
tp->reordering, when the connection sees how far segments are reordered.

All sequence numbers here are unwrapped integers (see stack.tcp_connection),
so plain comparisons are correct. Ranges are half-open [start, end). Pure
data: touches nothing.
"""

from __future__ import annotations

from bisect import bisect_left, insort

DUPTHRESH = 3  # RFC 6675 DupThresh, to begin with
MAX_REORDERING = 300  # Linux's tcp_max_reordering: the most DupThresh grows to


def _merge(ranges: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """Insert [start, end) into sorted disjoint ranges, merging overlaps and neighbours."""
    out: list[tuple[int, int]] = []
    placed = False
    for s, e in ranges:
        if e < start:
            out.append((s, e))
        elif end < s:
            if not placed:
                out.append((start, end))
                placed = True
            out.append((s, e))
        else:
            start, end = min(s, start), max(e, end)
    if not placed:
        out.append((start, end))
    return out


class SackScoreboard:
    """The sender's record of SACKed ranges above SND.UNA."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []
        self.rack_lost_below = 0  # RACK: unSACKed bytes below this are lost
        self.dupthresh = DUPTHRESH  # segments; raised by observed reordering

    def clear(self) -> None:
        self.ranges.clear()
        self.rack_lost_below = 0

    def update(self, snd_una: int, blocks: list[tuple[int, int]], snd_max: int) -> int:
        """Record SACK blocks (already unwrapped); returns newly SACKed bytes."""
        before = self.sacked_bytes()
        for start, end in blocks:
            start = max(start, snd_una)
            end = min(end, snd_max)
            if start < end:
                self.ranges = _merge(self.ranges, start, end)
        self.advance(snd_una)
        return self.sacked_bytes() - before

    def advance(self, snd_una: int) -> None:
        """Drop everything below the cumulative ACK."""
        ranges = self.ranges
        while ranges and ranges[0][1] <= snd_una:
            ranges.pop(0)
        if ranges and ranges[0][0] < snd_una:
            ranges[0] = (snd_una, ranges[0][1])

    def sacked_bytes(self) -> int:
        return sum(e - s for s, e in self.ranges)

    def is_sacked(self, seq: int) -> bool:
        for s, e in self.ranges:
            if s <= seq < e:
                return True
            if seq < s:
                return False
        return False

    def highest_sacked(self) -> int | None:
        return self.ranges[-1][1] if self.ranges else None

    def is_lost(self, seq: int, mss: int) -> bool:
        """RFC 6675 IsLost: DupThresh discontiguous SACKed segments above seq,
        or more than (DupThresh - 1) * SMSS bytes SACKed above it, or RACK said so."""
        if seq < self.rack_lost_below:
            return True
        above = 0
        blocks = 0
        for s, e in self.ranges:
            if e <= seq:
                continue
            above += e - max(s, seq + 1)
            blocks += 1
        return blocks >= self.dupthresh or above > (self.dupthresh - 1) * mss

    def pipe(self, snd_una: int, snd_max: int, high_rxt: int, mss: int) -> int:
        """RFC 6675 SetPipe, by segment-sized steps over the unSACKed ranges."""
        pipe = 0
        seq = snd_una
        for s, e in [*self.ranges, (snd_max, snd_max)]:
            # unSACKed bytes in [seq, s)
            while seq < s:
                end = min(seq + mss, s)
                if not self.is_lost(seq, mss):
                    pipe += end - seq
                if seq < high_rxt:
                    pipe += end - seq
                seq = end
            seq = max(seq, e)
        return pipe

    def next_hole(self, start: int, snd_max: int, mss: int) -> tuple[int, int] | None:
        """The first unSACKed, lost range at or after `start` (RFC 6675 NextSeg rule 1)."""
        seq = start
        for s, e in [*self.ranges, (snd_max, snd_max)]:
            if seq < s:
                end = min(seq + mss, s)
                if self.is_lost(seq, mss):
                    return seq, end
                return None
            seq = max(seq, e)
        return None


class ReceiveQueue:
    """Out-of-order segments above RCV.NXT, merged, with RFC 2018 block ordering."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.data: dict[int, bytes] = {}
        self.bytes = 0
        self.recent: list[tuple[int, int]] = []  # most recently changed blocks first

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, seq: int, payload: bytes, limit: int) -> bool:
        """Queue a segment; False if it would exceed `limit` bytes (then it's dropped)."""
        end = seq + len(payload)
        # trim against existing neighbours; keep the queue disjoint
        i = bisect_left(self.starts, seq)
        if i > 0:
            prev = self.starts[i - 1]
            prev_end = prev + len(self.data[prev])
            if prev_end >= end:
                self._touch(prev, prev_end)
                return True
            if prev_end > seq:
                payload = payload[prev_end - seq:]
                seq = prev_end
        while i < len(self.starts) and self.starts[i] < end:
            nxt = self.starts[i]
            nxt_data = self.data[nxt]
            nxt_end = nxt + len(nxt_data)
            if nxt_end <= end:
                # fully covered by the new segment
                del self.data[nxt]
                self.starts.pop(i)
                self.bytes -= len(nxt_data)
                continue
            payload = payload[: nxt - seq]
            end = nxt
            break
        if not payload:
            return True
        if self.bytes + len(payload) > limit:
            return False
        insort(self.starts, seq)
        self.data[seq] = bytes(payload)
        self.bytes += len(payload)
        self._touch(seq, seq + len(payload))
        return True

    def overlap(self, seq: int, end: int) -> tuple[int, int] | None:
        """The first queued range [seq, end) duplicates, clipped to it (a D-SACK block)."""
        i = bisect_left(self.starts, seq)
        if i > 0:
            i -= 1
        while i < len(self.starts):
            start = self.starts[i]
            if start >= end:
                return None
            stop = start + len(self.data[start])
            if stop > seq:
                return max(seq, start), min(end, stop)
            i += 1
        return None

    def _touch(self, start: int, end: int) -> None:
        block = self._block_containing(start, end)
        others = [b for b in self.recent if not (b[0] < block[1] and block[0] < b[1])]
        self.recent = [block, *others]
        del self.recent[8:]

    def _block_containing(self, start: int, end: int) -> tuple[int, int]:
        """Extend [start, end) over adjacent queued segments."""
        i = bisect_left(self.starts, start)
        s, e = start, end
        j = i - 1
        while j >= 0 and self.starts[j] + len(self.data[self.starts[j]]) >= s:
            s = min(s, self.starts[j])
            j -= 1
        k = i
        while k < len(self.starts) and self.starts[k] <= e:
            e = max(e, self.starts[k] + len(self.data[self.starts[k]]))
            k += 1
        return s, e

    def pop_in_order(self, rcv_nxt: int) -> list[bytes]:
        """Remove and return queued data that now continues at rcv_nxt."""
        out = []
        while self.starts and self.starts[0] <= rcv_nxt:
            seq = self.starts.pop(0)
            data = self.data.pop(seq)
            self.bytes -= len(data)
            end = seq + len(data)
            if end > rcv_nxt:
                out.append(data[rcv_nxt - seq:])
                rcv_nxt = end
        self.recent = [b for b in self.recent if b[1] > rcv_nxt]
        return out

    def sack_blocks(self, rcv_nxt: int, count: int) -> list[tuple[int, int]]:
        """Up to `count` SACK blocks, most recent first, each a whole contiguous run."""
        blocks: list[tuple[int, int]] = []
        for start, end in self.recent:
            if end <= rcv_nxt:
                continue
            block = self._block_containing(max(start, rcv_nxt), end)
            if block not in blocks:
                blocks.append(block)
            if len(blocks) == count:
                break
        return blocks

    def clear(self) -> None:
        self.starts.clear()
        self.data.clear()
        self.bytes = 0
        self.recent.clear()
