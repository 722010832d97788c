"""lobby: players on two hosts find each other over IPv4 and IPv6 multicast."""

from __future__ import annotations

import pytest

from .harness import Lab


@pytest.mark.parametrize("family", [[], ["-6"]], ids=["ipv4", "ipv6"])
def test_players_on_two_hosts_hear_each_other(lab: Lab, family: list[str]) -> None:
    # carol shares bravo (and the port) with bob: SO_REUSEADDR plus multicast loopback.
    placement = {"alice": "alpha", "bob": "bravo", "carol": "bravo"}
    players = {name: lab.start(host, "lobby", *family, "-n", "6", "-t", "100", name)
               for name, host in placement.items()}
    lab.wait_all(*players.values())
    group = "ff15::7777" if family else "239.255.77.77"
    for name, program in players.items():
        others = " ".join(sorted(set(placement) - {name}))
        assert program.exit_code == 0, program.describe()
        assert program.lines() == [
            f"lobby: {name} announcing on {group} port 7777 via eth0",
            f"lobby: {name} heard 2 peer(s): {others}",
        ]


def test_lone_player_hears_nobody(lab: Lab) -> None:
    player = lab.run("alpha", "lobby", "-i", "eth0", "-p", "7778", "-n", "2", "-t", "50", "solo")
    assert player.exit_code == 0, player.describe()
    assert player.lines()[-1] == "lobby: solo heard 0 peer(s):"


def test_unknown_interface_is_an_error(lab: Lab) -> None:
    player = lab.run("alpha", "lobby", "-i", "wlan9", "ghost")
    assert player.exit_code == 1
    assert "lobby: no wlan9 interface with an IPv4 address" in player.stderr
