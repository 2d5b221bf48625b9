"""The egress policy: which addresses a captured page may make the browser reach (issue 12)."""

from __future__ import annotations

import asyncio

import pytest

from evicap.capture.egress import EgressPolicy, classify, parse_networks, policy_for
from evicap.errors import UsageError


def decide(policy: EgressPolicy, url: str):  # type: ignore[no-untyped-def]
    return asyncio.run(policy.check(url))


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud-metadata"),
        ("http://[fd00:ec2::254]/latest/", "cloud-metadata"),
        ("http://127.0.0.1:8080/admin", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://172.16.0.9/", "private"),
        ("https://192.168.1.1/router", "private"),
        ("http://[fd12:3456::1]/", "unique-local"),
        ("http://169.254.10.10/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.1.1/", "shared-address-space"),
        ("http://0.0.0.0:9222/json", "unspecified"),
        ("http://[::ffff:10.0.0.1]/", "private"),
    ],
)
def test_public_target_may_not_reach_internal_addresses(url: str, rule: str) -> None:
    decision = decide(policy_for("https://203.0.113.10/page"), url)
    assert not decision.allowed
    assert decision.rule == rule
    assert decision.address is not None


def test_public_addresses_and_non_network_schemes_pass() -> None:
    policy = policy_for("https://203.0.113.10/page")
    assert decide(policy, "https://198.51.100.7/img.png").allowed
    assert decide(policy, "data:text/plain,hi").allowed
    assert decide(policy, "blob:https://203.0.113.10/abc").allowed


def test_target_on_loopback_opens_loopback_but_not_metadata() -> None:
    policy = policy_for("http://127.0.0.1:8000/")
    allowed = decide(policy, "http://localhost:9000/other-site")
    assert allowed.allowed and allowed.rule == "target-network"
    assert decide(policy, "http://[::1]:9000/").allowed
    assert not decide(policy, "http://169.254.169.254/").allowed
    assert not decide(policy, "http://10.0.0.1/").allowed


def test_target_in_a_private_range_opens_only_that_range() -> None:
    policy = policy_for("http://192.168.7.20/intranet")
    assert decide(policy, "http://192.168.9.1/x").allowed
    blocked = decide(policy, "http://10.0.0.1/x")
    assert not blocked.allowed and blocked.rule == "private"


def test_allow_network_widens_the_policy_and_says_so() -> None:
    policy = policy_for("https://203.0.113.10/", allow=["10.20.0.0/16"])
    decision = decide(policy, "http://10.20.3.4/")
    assert decision.allowed and decision.rule == "allow-network 10.20.0.0/16"
    assert not decide(policy, "http://10.21.0.1/").allowed


def test_loopback_test_switch_makes_a_second_loopback_address_private() -> None:
    policy = policy_for("http://127.0.0.1:8000/", treat_as_private=["127.0.0.2"])
    decision = decide(policy, "http://127.0.0.2:8001/secret")
    assert not decision.allowed and decision.rule == "test-private" and decision.address == "127.0.0.2"
    assert decide(policy, "http://127.0.0.1:8001/").allowed


def test_rebinding_check_on_the_connected_address() -> None:
    policy = policy_for("https://203.0.113.10/")
    decision = asyncio.run(policy.check_address("169.254.169.254"))
    assert not decision.allowed and decision.rule == "cloud-metadata"
    assert asyncio.run(policy.check_address("[2001:db8::1]")).allowed


def test_names_are_resolved_and_every_address_counts() -> None:
    # "localhost" resolves (from /etc/hosts, no network) to loopback: refused for a public target.
    decision = decide(policy_for("https://203.0.113.10/"), "http://localhost:631/")
    assert not decision.allowed and decision.rule == "loopback"


def test_bad_cidr_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not an IP network"):
        parse_networks(["10.0.0.0/33"])
    assert classify(__import__("ipaddress").ip_address("8.8.8.8")) is None


def test_through_a_proxy_names_are_not_resolved_locally_but_literals_are_checked() -> None:
    policy = policy_for("https://203.0.113.10/", proxy="socks5://127.0.0.1:1080")
    by_name = decide(policy, "http://localhost:631/")
    assert by_name.allowed and by_name.address is None and "proxy" in (by_name.rule or "")
    assert not decide(policy, "http://169.254.169.254/latest/").allowed
    # Proxied responses come from the proxy's address: not a rebinding.
    assert asyncio.run(policy.check_address("127.0.0.1")).allowed
    assert not asyncio.run(policy.check_address("10.0.0.5")).allowed
