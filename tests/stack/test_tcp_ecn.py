"""ECN (RFC 3168) as Linux does it: negotiation, ECT(0), ECE echo, CWR, one cut per window.

Dialogues with one stack (tests/stack/tcp_harness.py). The peer's segments
can arrive CE-marked (`send_marked`); the IP ECN field of what the stack
sent is read back from the frames (`ip_ecn`). `TcpConfig.ecn` is Linux's
net.ipv4.tcp_ecn: 2 (default) grants ECN to SYNs that ask, 1 also asks. The
kernel as the peer is in tests/kernel/test_ecn.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import TCP

from stack.tcp_connection import TcpConfig
from tests.stack.tcp_harness import MS, SEC, Dialogue, flag_text

NOT_ECT, ECT0, CE = 0, 2, 3


def ip_ecn(seg: TCP) -> int:
    ip = seg.underlayer
    assert ip is not None
    return int(ip.tc if hasattr(ip, "tc") else ip.tos) & 3


def send_marked(d: Dialogue, ecn: int, **segment: Any) -> None:
    """d.send(**segment) with the IP header's ECN field set to `ecn`."""
    plain = d._ip

    def marked() -> Any:
        ip = plain()
        if d.v6:
            ip.tc = ecn
        else:
            ip.tos = ecn
        return ip

    d._ip = marked  # type: ignore[method-assign]
    try:
        d.send(**segment)
    finally:
        d._ip = plain  # type: ignore[method-assign]


def ecn_passive(d: Dialogue, syn_flags: str = "SEC") -> Any:
    """listen(); an ECN-setup SYN; accept(). Returns (accepted socket, SYN-ACK)."""
    listener = d.listen()
    d.send(syn_flags, seq=d.REMOTE, ack=0, options=[("MSS", 1460)])
    synack = d.expect(ack=d.REMOTE + 1)
    d.local = synack.seq
    d.send("A", seq=d.REMOTE + 1, ack=d.local + 1)
    return listener.accept(), synack


@pytest.mark.parametrize("v6", [False, True])
def test_an_ecn_setup_syn_gets_ece_and_data_goes_out_ect0(v6: bool) -> None:
    d = Dialogue(v6=v6)
    sock, synack = ecn_passive(d)
    assert flag_text(int(synack.flags)) == "SAE" and ip_ecn(synack) == NOT_ECT
    assert d.conn(sock).ecn_ok
    sock.send(b"data")
    seg = d.expect(flags="PA", data=b"data")
    assert ip_ecn(seg) == ECT0
    d.send("PA", seq=d.REMOTE + 1, ack=d.local + 5, data=b"reply")
    d.advance(50 * MS)
    (ack,) = d.sent()
    assert flag_text(int(ack.flags)) == "A" and ip_ecn(ack) == NOT_ECT  # pure ACKs: not-ECT


def test_by_default_we_do_not_ask_and_a_plain_syn_gets_no_ecn() -> None:
    d = Dialogue()
    sock = d.connect()
    d.expect(flags="S")  # tcp_ecn = 2: accept, never ask
    d2 = Dialogue()
    sock2, synack = ecn_passive(d2, syn_flags="S")
    assert flag_text(int(synack.flags)) == "SA" and not d2.conn(sock2).ecn_ok
    sock2.send(b"data")
    assert ip_ecn(d2.expect(flags="PA")) == NOT_ECT
    assert sock.conn is not None and not sock.conn.ecn_ok


def test_tcp_ecn_0_refuses_and_an_ect_marked_syn_is_refused() -> None:
    d = Dialogue(TcpConfig(ecn=0))
    _, synack = ecn_passive(d)
    assert flag_text(int(synack.flags)) == "SA"
    d = Dialogue()
    listener = d.listen()
    send_marked(d, ECT0, flags="SEC", seq=d.REMOTE, ack=0)  # a SYN must be not-ECT
    d.expect(flags="SA")
    assert listener.listener is not None
    assert not next(iter(listener.listener.syn_queue.values())).ecn_ok


def test_tcp_ecn_1_asks_and_the_syn_ack_decides() -> None:
    d = Dialogue(TcpConfig(ecn=1))
    sock = d.connect()
    syn = d.expect(flags="SEC")
    assert ip_ecn(syn) == NOT_ECT
    d.local = syn.seq
    d.send("SAE", seq=d.REMOTE, ack=d.local + 1, options=[("MSS", 1460)])
    d.expect(flags="A")
    assert d.conn(sock).ecn_ok
    sock.send(b"x")
    assert ip_ecn(d.expect(flags="PA")) == ECT0
    # a SYN-ACK without ECE (or with ECE|CWR, a reflector) means no ECN
    for reply in ("SA", "SAEC"):
        d = Dialogue(TcpConfig(ecn=1))
        sock = d.connect()
        d.local = d.expect(flags="SEC").seq
        d.send(reply, seq=d.REMOTE, ack=d.local + 1)
        d.expect(flags="A")
        assert not d.conn(sock).ecn_ok
        sock.send(b"x")
        assert ip_ecn(d.expect(flags="PA")) == NOT_ECT


def test_a_retransmitted_syn_no_longer_asks_for_ecn() -> None:
    d = Dialogue(TcpConfig(ecn=1))
    sock = d.connect()
    d.expect(flags="SEC")
    d.advance(1 * SEC)
    d.expect(flags="S")  # Linux tcp_ecn_fallback: a middlebox may drop ECN-setup SYNs
    d.local = d.conn(sock).iss
    d.send("SA", seq=d.REMOTE, ack=d.local + 1)  # the answer to the plain SYN
    d.expect(flags="A")
    assert not d.conn(sock).ecn_ok
    # as Linux, the connection still takes ECN from a SYN-ACK answering the first SYN
    d = Dialogue(TcpConfig(ecn=1))
    sock = d.connect()
    d.local = d.expect(flags="SEC").seq
    d.advance(1 * SEC)
    d.expect(flags="S")
    d.send("SAE", seq=d.REMOTE, ack=d.local + 1)
    d.expect(flags="A")
    assert d.conn(sock).ecn_ok


def test_ce_is_echoed_with_ece_until_cwr() -> None:
    d = Dialogue()
    sock, _ = ecn_passive(d)
    conn = d.conn(sock)
    conn.quickack = 0  # past the connection's start: ACKs are delayed again
    seq = d.REMOTE + 1
    d.send("PA", seq=seq, ack=d.local + 1, data=b"a" * 100)
    d.expect_none()  # an ordinary segment: the ACK is delayed
    send_marked(d, CE, flags="PA", seq=seq + 100, ack=d.local + 1, data=b"b" * 100)
    d.expect(flags="AE", ack=seq + 200)  # CE: ECE at once
    d.send("PA", seq=seq + 200, ack=d.local + 1, data=b"c" * 100)
    d.expect(flags="AE", ack=seq + 300)  # quick ACKs, still echoing
    sock.send(b"reply")
    seg = d.expect(flags="PAE", data=b"reply")  # data echoes too
    assert ip_ecn(seg) == ECT0
    d.send("PAC", seq=seq + 300, ack=d.local + 6, data=b"d" * 100)  # the sender reacted
    d.expect(flags="A", ack=seq + 400)  # CWR: echo over, ACKed at once
    d.send("PA", seq=seq + 400, ack=d.local + 6, data=b"e" * 100)
    d.advance(50 * MS)
    assert [flag_text(int(s.flags)) for s in d.sent()] == ["A"]
    assert d.stack.counters["tcp.ecn_ce_in"] == 1


def _sender_with_flight(d: Dialogue, segments: int) -> tuple[Any, int]:
    sock, _ = ecn_passive(d)
    sock.send(b"x" * (1460 * segments))
    sent = d.sent()
    assert len(sent) == segments and all(ip_ecn(s) == ECT0 for s in sent)
    assert not any(int(s.flags) & 0x80 for s in sent)
    return sock, d.local + 1


def test_ece_cuts_cwnd_once_per_window_and_the_next_data_carries_cwr() -> None:
    d = Dialogue()
    sock, start = _sender_with_flight(d, 10)
    conn = d.conn(sock)
    cwnd = conn.cc.cwnd
    d.send("AE", seq=d.REMOTE + 1, ack=start + 1460)  # the peer saw CE
    assert conn.cc.cwnd < cwnd and conn.cc.ssthresh == conn.cc.cwnd
    reduced = conn.cc.cwnd
    assert d.stack.counters["tcp.ecn_reductions"] == 1
    d.send("AE", seq=d.REMOTE + 1, ack=start + 2 * 1460)  # same window: no second cut
    assert d.stack.counters["tcp.ecn_reductions"] == 1
    assert conn.cc.cwnd >= reduced
    d.send("A", seq=d.REMOTE + 1, ack=start + 6 * 1460)  # room under the reduced cwnd
    d.sent()
    sock.send(b"y" * 1460 * 2)
    new = [s for s in d.sent() if len(s.payload)]
    assert new and flag_text(int(new[0].flags)).endswith("C") and ip_ecn(new[0]) == ECT0
    assert all(not int(s.flags) & 0x80 for s in new[1:])  # CWR once
    # once the window that saw the cut is acknowledged, a new ECE cuts again
    d.send("AE", seq=d.REMOTE + 1, ack=conn.snd_max)
    assert d.stack.counters["tcp.ecn_reductions"] == 2
    d.sent()
    d.send("AE", seq=d.REMOTE + 1, ack=conn.snd_max)  # nothing in flight: nothing to cut
    assert d.stack.counters["tcp.ecn_reductions"] == 2


def test_retransmissions_are_not_ect_and_a_timeout_is_announced_with_cwr() -> None:
    d = Dialogue()
    sock, start = _sender_with_flight(d, 2)
    d.advance(1 * SEC)
    rexmit = d.sent()[0]
    assert rexmit.seq == start and ip_ecn(rexmit) == NOT_ECT  # RFC 3168 §6.1.5
    d.send("A", seq=d.REMOTE + 1, ack=start + 2 * 1460)
    d.sent()
    sock.send(b"new")
    seg = d.expect(data=b"new")
    assert flag_text(int(seg.flags)) == "PAC" and ip_ecn(seg) == ECT0


def test_ece_without_ecn_is_ignored() -> None:
    d = Dialogue()
    sock, _ = ecn_passive(d, syn_flags="S")
    sock.send(b"x" * 1460 * 4)
    d.sent()
    conn = d.conn(sock)
    cwnd = conn.cc.cwnd
    d.send("AE", seq=d.REMOTE + 1, ack=d.local + 1 + 1460)
    assert conn.cc.cwnd >= cwnd and d.stack.counters["tcp.ecn_reductions"] == 0


def test_ip_tos_cannot_set_the_ecn_bits_of_a_tcp_socket() -> None:
    d = Dialogue()
    sock = d.socket()
    sock.tos = 0xB8 | CE  # EF, and an attempt at CE
    sock = d.establish_active(sock=sock)
    sock.send(b"x")
    seg = d.expect(flags="PA")
    assert seg.underlayer.tos == 0xB8  # DSCP kept, ECN field TCP's own (not-ECT here)


def test_a_syn_cookie_remembers_the_ecn_grant() -> None:
    d = Dialogue()
    listener = d.listen(backlog=1)
    for sport in range(50000, 50008):
        d.send("S", seq=d.REMOTE + sport, ack=0, sport=sport)
        d.sent()
    d.send("SEC", seq=d.REMOTE + 51000, ack=0, sport=51000,
           options=[("MSS", 1460), ("Timestamp", (1000, 0))])
    cookie = d.expect(flags="SAE")
    tsval = dict(cookie.options)["Timestamp"][0]
    d.send("A", seq=d.REMOTE + 51000 + 1, ack=cookie.seq + 1, sport=51000,
           options=[("Timestamp", (1001, tsval))])
    sock = listener.accept()
    assert d.conn(sock).ecn_ok
    sock.send(b"x")
    assert ip_ecn(d.expect(flags="PA")) == ECT0
