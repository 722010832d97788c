"""chat_server with two scripted chat_clients: the same transcripts, natively and on vnet."""

from __future__ import annotations

from .harness import Lab


def test_two_clients_chat_and_see_joins_and_leaves(lab: Lab) -> None:
    server = lab.start("alpha", "chat_server", "6667", "2")
    server.wait_for("listening on port 6667")
    alice = lab.start("bravo", "chat_client", "alpha", "6667", "alice",
                      "?* bob joined", "hi bob", "?bob: hi alice", "+50", "bye bob")
    server.wait_for("alice joined")
    bob = lab.start("alpha", "chat_client", "localhost", "6667", "bob",
                    "?alice: hi bob", "hi alice", "?alice: bye bob", "?* alice left")
    lab.wait_all(alice, bob, server)
    assert (alice.exit_code, bob.exit_code, server.exit_code) == (0, 0, 0), (
        alice.describe() + bob.describe() + server.describe())
    assert alice.lines() == [
        "chat_client: alice connected",
        "< * welcome alice, 1 online",
        "< * bob joined",
        "> hi bob",
        "< bob: hi alice",
        "> bye bob",
        "chat_client: alice quit",
    ]
    assert bob.lines() == [
        "chat_client: bob connected",
        "< * welcome bob, 2 online",
        "< alice: hi bob",
        "> hi alice",
        "< alice: bye bob",
        "< * alice left",
        "chat_client: bob quit",
    ]
    assert server.lines() == [
        "chat_server: listening on port 6667",
        "chat_server: alice joined",
        "chat_server: bob joined",
        "chat_server: alice left",
        "chat_server: bob left",
        "chat_server: 2 joined, 2 left, bye",
    ]


def test_client_gives_up_waiting(lab: Lab) -> None:
    server = lab.start("alpha", "chat_server", "6668", "1")
    server.wait_for("listening")
    carol = lab.run("bravo", "chat_client", "-w", "300", "10.0.0.1", "6668", "carol",
                    "?never said")
    assert carol.exit_code == 1
    assert carol.lines() == ["chat_client: carol connected", "< * welcome carol, 1 online",
                             'chat_client: gave up waiting for "never said"']
    server.wait()
    assert server.lines()[-1] == "chat_server: 1 joined, 1 left, bye"
