"""What each drop counter in a run's summary means, and whether it is a problem.

The stack counts every packet it drops under a dotted name —
`ipv6.drop.not_member`, `udp.drop.queue_full`, `tcp.drop.no_socket` — and a
summary lists them per host. Most drops on a healthy network are normal (a
multicast for a group nobody joined, a frame flooded to every port of a
switch); some mean a limit was reached (a full receive buffer, a full accept
queue); some mean a packet was malformed or spoofed. `explain(name)` says
which, in one line, so that a person reading `vnet sim`'s summary knows what
to look at. Pure data: touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

NORMAL = "normal"      # a working network drops these all the time
LIMIT = "limit"        # a queue, buffer or memory limit was reached: a slow reader or a burst
CONFIG = "config"      # as configured (firewall, routes, MTUs): look if it is unexpected
MALFORMED = "bad input"  # malformed, spoofed or hostile packets
OTHER = "other"        # a reason this table does not describe yet: its name says what


@dataclass(frozen=True, slots=True)
class DropReason:
    kind: str
    text: str

    @property
    def is_problem(self) -> bool:
        return self.kind != NORMAL


_BY_PROTOCOL_REASON: dict[str, DropReason] = {
    # --- normal ---------------------------------------------------------------------------
    "ipv4.not_member": DropReason(NORMAL, "multicast for a group no socket on this host "
                                  "joined (e.g. another host's mDNS or IGMP)"),
    "ipv6.not_member": DropReason(NORMAL, "multicast for a group no socket on this host "
                                  "joined (e.g. other hosts' MLD reports or mDNS)"),
    "ipv4.broadcast": DropReason(NORMAL, "a broadcast no socket on this host listens for"),
    "ethernet.not_for_us": DropReason(NORMAL, "a frame for another MAC address (a switch "
                                      "floods unknown destinations to every port)"),
    "ethernet.unknown_ethertype": DropReason(NORMAL, "a protocol this host does not speak "
                                             "(not IPv4, IPv6 or ARP)"),
    "ethernet.vlan": DropReason(NORMAL, "a VLAN-tagged frame: vnet hosts have no VLAN "
                                "interfaces"),
    "ndp.not_our_target": DropReason(NORMAL, "a neighbour solicitation for another host's "
                                     "address"),
    "icmp.broadcast_echo": DropReason(NORMAL, "a ping to a broadcast address (ignored, as "
                                      "Linux's icmp_echo_ignore_broadcasts)"),
    "icmpv6.multicast_echo": DropReason(NORMAL, "a ping to a multicast address (ignored)"),
    "icmp.no_socket": DropReason(NORMAL, "an ICMP reply or error nobody on this host waits "
                                 "for (e.g. for a socket already closed)"),
    "icmpv6.no_socket": DropReason(NORMAL, "an ICMPv6 reply or error nobody on this host "
                                   "waits for (e.g. for a socket already closed)"),
    "udp.no_socket": DropReason(NORMAL, "a datagram to a port nobody listens on (answered "
                                "with ICMP port unreachable; usual after a peer quits)"),
    "tcp.no_socket": DropReason(NORMAL, "a segment for no connection (answered with a "
                                "reset; usual just after a close or a restart)"),
    "ipv6.link_local_not_forwarded": DropReason(NORMAL, "a link-local packet reached a "
                                                "router, which never forwards those"),
    "icmp.bad_invoking_packet": DropReason(NORMAL, "an ICMP error about a packet this host "
                                           "did not send"),
    "icmpv6.bad_invoking_packet": DropReason(NORMAL, "an ICMPv6 error about a packet this "
                                             "host did not send"),
    "icmp.pmtu_not_ours": DropReason(NORMAL, "a 'fragmentation needed' for a packet this "
                                     "host did not send"),
    "icmpv6.pmtu_not_ours": DropReason(NORMAL, "a 'packet too big' for a packet this host "
                                       "did not send"),
    "ipv4.frag_needed": DropReason(NORMAL, "a packet larger than the next hop's MTU with DF "
                                   "set: path MTU discovery (once per path is normal)"),
    "ipv6.too_big": DropReason(NORMAL, "a packet larger than the next hop's MTU: path MTU "
                               "discovery (once per path is normal)"),
    # --- limits ---------------------------------------------------------------------------
    "udp.queue_full": DropReason(LIMIT, "a socket's receive buffer was full: the receiver "
                                 "reads slower than the sender sends (SO_RCVBUF)"),
    "udp.memory": DropReason(LIMIT, "the receiving guest's memory limit was reached"),
    "udp.reclaimed": DropReason(LIMIT, "queued datagrams reclaimed under the guest's memory "
                                "limit"),
    "tcp.memory": DropReason(LIMIT, "the receiving guest's memory limit was reached"),
    "tcp.reclaimed": DropReason(LIMIT, "queued data reclaimed under the guest's memory limit"),
    "tcp.ofo_pruned": DropReason(LIMIT, "out-of-order data dropped to stay within the "
                                 "receive buffer (it is sent again)"),
    "tcp.ooo_full": DropReason(LIMIT, "out-of-order data beyond the receive buffer"),
    "tcp.listen_overflow": DropReason(LIMIT, "a listener's accept queue was full: "
                                      "connections arrive faster than accept() takes them"),
    "tcp.syn_queue_full": DropReason(LIMIT, "a listener's SYN queue was full (a SYN flood, "
                                     "or a backlog too small for the connection rate)"),
    "tcp.accept_queue_full": DropReason(LIMIT, "a listener's accept queue was full: "
                                        "connections arrive faster than accept() takes them"),
    "ipv4.conntrack_full": DropReason(LIMIT, "the connection-tracking table was full"),
    "ipv6.conntrack_full": DropReason(LIMIT, "the connection-tracking table was full"),
    # --- as configured --------------------------------------------------------------------
    "ipv4.firewall": DropReason(CONFIG, "dropped by the host's firewall (input or forward "
                                "rules)"),
    "ipv6.firewall": DropReason(CONFIG, "dropped by the host's firewall (input or forward "
                                "rules)"),
    "ipv4.firewall_out": DropReason(CONFIG, "refused by the host's firewall on the way out "
                                    "(output or postrouting rules)"),
    "ipv6.firewall_out": DropReason(CONFIG, "refused by the host's firewall on the way out "
                                    "(output or postrouting rules)"),
    "tcp.output_refused": DropReason(CONFIG, "a segment the host's firewall refused to send"),
    "ipv4.no_route": DropReason(CONFIG, "no route to the destination: check the routes and "
                                "gateways"),
    "ipv6.no_route": DropReason(CONFIG, "no route to the destination: check the routes and "
                                "gateways"),
    "ipv4.not_for_us": DropReason(CONFIG, "a packet for another address on a host that does "
                                  "not forward"),
    "ipv6.not_for_us": DropReason(CONFIG, "a packet for another address on a host that does "
                                  "not forward"),
    "ipv4.ttl_exceeded": DropReason(CONFIG, "TTL reached 0 while forwarding: a routing loop, "
                                    "or a traceroute"),
    "ipv6.hop_limit_exceeded": DropReason(CONFIG, "hop limit reached 0 while forwarding: a "
                                          "routing loop, or a traceroute"),
    # --- malformed, spoofed, hostile ------------------------------------------------------
    "ipv4.bad_source": DropReason(MALFORMED, "an impossible source address (multicast or "
                                  "broadcast)"),
    "ipv6.bad_source": DropReason(MALFORMED, "an impossible source address (multicast)"),
    "ipv4.martian_source": DropReason(MALFORMED, "a source address that cannot arrive on that "
                                      "interface (spoofed?)"),
    "ipv6.martian_source": DropReason(MALFORMED, "a source address that cannot arrive on that "
                                      "interface (spoofed?)"),
    "ipv4.loopback_source": DropReason(MALFORMED, "a loopback address on a real interface "
                                       "(spoofed?)"),
    "ipv6.loopback_source": DropReason(MALFORMED, "a loopback address on a real interface "
                                       "(spoofed?)"),
    "tcp.syn_fin": DropReason(MALFORMED, "SYN and FIN together (a scan)"),
    "tcp.broadcast": DropReason(MALFORMED, "TCP to a broadcast or multicast address"),
    "tcp.paws": DropReason(MALFORMED, "an old timestamp (PAWS): a duplicate from the past, "
                           "or an attack"),
    "tcp.icmp_out_of_window": DropReason(MALFORMED, "an ICMP error quoting a sequence number "
                                         "outside the window (ignored, as Linux)"),
    "ndp.hop_limit_not_255": DropReason(MALFORMED, "neighbour discovery from off-link (hop "
                                        "limit not 255): spoofed"),
    "ndp.ra_not_link_local": DropReason(MALFORMED, "a router advertisement not from a "
                                        "link-local address: spoofed"),
    "ipv6.unknown_option": DropReason(MALFORMED, "an IPv6 option the receiver must not "
                                      "skip"),
    "ndp.bad_rdnss": DropReason(MALFORMED, "a router advertisement's resolver option "
                                "(RDNSS) with an impossible length"),
    "ndp.ra_no_link_local": DropReason(CONFIG, "a router advertisement not sent: the "
                                       "interface is down or has no link-local address yet"),
    "rx_dropped_frozen": DropReason(LIMIT, "frames for a frozen host beyond what its NIC "
                                    "holds until the thaw (256 per NIC)"),
    "ip.bad_version": DropReason(MALFORMED, "neither IPv4 nor IPv6"),
    "ip.empty": DropReason(MALFORMED, "an empty packet"),
}

# reasons any parser gives (stack/wire/errors.py), whatever the protocol
_WIRE_ERRORS: dict[str, str] = {
    "truncated": "shorter than its header or its length field says",
    "bad_length": "an impossible length field",
    "bad_checksum": "a checksum that does not verify",
    "bad_version": "another protocol version",
    "bad_option": "malformed options",
    "bad_header_chain": "IPv6 extension headers out of order",
    "too_many_headers": "more extension headers or VLAN tags than allowed",
    "unsupported": "a variant vnet does not parse",
}


def explain(counter: str) -> DropReason:
    """The meaning of one drop counter (`ipv6.drop.not_member`, or the part after
    `.drop.` with its protocol: `ipv6.not_member`)."""
    protocol, _sep, reason = counter.partition(".drop.")
    key = f"{protocol}.{reason}" if reason else counter
    known = _BY_PROTOCOL_REASON.get(key)
    if known is not None:
        return known
    reason = reason or counter.rpartition(".")[2]
    inner, _sep, wire_reason = reason.partition("_")  # e.g. dhcp's "udp_bad_checksum"
    if wire_reason in _WIRE_ERRORS:
        protocol, reason = inner, wire_reason
    if reason in _WIRE_ERRORS:
        return DropReason(MALFORMED, f"malformed {protocol or 'packet'}: "
                          f"{_WIRE_ERRORS[reason]}")
    if reason.startswith("reassembly_"):
        return DropReason(LIMIT, "fragments that could not be reassembled (one was lost, "
                          "timed out or overlapped)")
    return DropReason(OTHER, "the counter's name says what dropped it")
