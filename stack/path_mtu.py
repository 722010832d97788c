"""The host's path MTU cache: what ICMP "fragmentation needed" and "packet too big" taught it.

Linux keeps a route exception per destination with the path MTU an ICMPv4
destination-unreachable/fragmentation-needed (RFC 1191) or ICMPv6 packet
too big (RFC 8201) reported, for `ip_rt_mtu_expires` (600 s); this is that
table for one `HostStack`. Datagram senders (UDP, ping sockets) ask
`mtu(dst, link_mtu, now)`: IPv6 fragments at the source to it, IPv4 sets
DF on datagrams that fit and fragments the others to it
(IP_PMTUDISC_WANT, Linux's default). TCP keeps its own per-connection
path MTU from the same ICMP errors.

Rules, as Linux applies them: a report only lowers a path MTU, never
raises it; an IPv4 report below 552 bytes (`min_pmtu`) counts as 552 and
*locks* the path MTU (`allows_df` is then False: no DF, so routers may
fragment further), an IPv4 report of 0 (a pre-RFC 1191 router) is
ignored, and an IPv6 report below 1280 counts as 1280; a report is believed only about a packet this
host sent (the quoted source is one of its addresses; the caller checks).
The table is bounded (`max_entries`, the least recently reported goes
first) so a flood of forged reports costs a fixed amount of memory.

Sans-IO: time comes in as an argument. Touches nothing outside itself.
"""

from __future__ import annotations

from collections import OrderedDict

EXPIRES_NS = 600 * 1_000_000_000  # Linux net.ipv4.route.mtu_expires
MIN_PMTU_V4 = 552  # Linux net.ipv4.route.min_pmtu
MIN_MTU_V6 = 1280  # RFC 8200 section 5
MAX_ENTRIES = 4096


class PathMtuCache:
    """Destination address -> (path MTU, expiry time in ns, locked)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, expires_ns: int = EXPIRES_NS) -> None:
        self.max_entries = max_entries
        self.expires_ns = expires_ns
        self._entries: OrderedDict[bytes, tuple[int, int, bool]] = OrderedDict()
        #: Bumped whenever a report is stored (per-flow caches compare against it).
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def mtu(self, dst: bytes, link_mtu: int, now_ns: int) -> int:
        """The MTU to send to dst with: the link's, or less if a report said so."""
        entry = self._entries.get(dst)
        if entry is None:
            return link_mtu
        mtu, expires, _locked = entry
        if expires <= now_ns:
            del self._entries[dst]
            return link_mtu
        return mtu if mtu < link_mtu else link_mtu

    def allows_df(self, dst: bytes, now_ns: int) -> bool:
        """False while an IPv4 report below min_pmtu has locked dst's path MTU."""
        entry = self._entries.get(dst)
        return entry is None or not entry[2] or entry[1] <= now_ns

    def learn(self, dst: bytes, reported: int, link_mtu: int, now_ns: int) -> bool:
        """A router said packets to dst must be at most `reported` bytes; True if it lowered
        the path MTU (False: ignored, or not lower than what is known)."""
        locked = False
        if len(dst) == 4:
            if reported == 0:
                return False
            if reported < MIN_PMTU_V4:
                reported, locked = MIN_PMTU_V4, True
        else:
            reported = max(reported, MIN_MTU_V6)
        known = self.mtu(dst, link_mtu, now_ns)
        if reported > known or (reported == known and not (
                locked and self.allows_df(dst, now_ns))):
            return False
        entries = self._entries
        entries[dst] = (reported, now_ns + self.expires_ns, locked)
        self.generation += 1
        entries.move_to_end(dst)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
        return True
