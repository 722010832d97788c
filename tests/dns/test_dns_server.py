"""The DNS server's life on its host: the port is taken while it runs, free after stop()."""

from __future__ import annotations

import errno
import socket

import pytest

from stack.wire import dns
from tests.dns.support import NS, RECORDS, lan
from vnet.network import HostSocket


def ask(sock: HostSocket, name: str) -> dns.DnsMessage:
    sock.sendto(dns.DnsMessage(3, questions=(dns.Question(name, dns.TYPE_A),)).build(),
                (NS, 53))
    reply = dns.parse(sock.recvfrom(2000)[0])
    assert isinstance(reply, dns.DnsMessage)
    return reply


def test_port_53_is_taken_while_serving_and_free_after_stop() -> None:
    net, a, ns, _web = lan()
    server = ns.serve_dns(records=RECORDS)
    with pytest.raises(OSError) as taken:
        ns.serve_dns()
    assert taken.value.errno == errno.EADDRINUSE
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        assert ask(sock, "mail.example.test").answers
        server.stop()
        net.run_for(0.1)
        assert server.task is not None and server.task.done
        with pytest.raises(OSError):  # nobody on port 53: port unreachable, or a timeout
            ask(sock, "mail.example.test")
        again = ns.serve_dns(records=[{"name": "new.test", "type": "A", "value": "192.0.2.1"}])
        sock.settimeout(1)
        assert ask(sock, "new.test").answers
        assert ask(sock, "mail.example.test").rcode == dns.RCODE_NXDOMAIN
    again.stop()
    net.close()
