"""services.host_policy without any network: which addresses the web and the API refuse,
how the per-user limit counts, and what a failed greeting becomes in their answers."""

from __future__ import annotations

import ipaddress

import pytest

from mailroom.errors import HostNotAllowed, NetworkError, ProtocolError, RateLimited, TLSError
from mailroom.services.host_policy import (
    OPERATOR,
    ConnectLimiter,
    HostPolicy,
    check_public,
    non_public_kind,
)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:0a00:0001::", "private"),  # 6to4 around 10.0.0.1
        ("fd00::1", "private"),
        ("240.0.0.1", "private"),  # reserved (Python counts 240/4 as private too)
        ("100.64.0.1", "non-public"),  # shared address space (carrier NAT)
    ],
)
def test_non_public_addresses_are_named_by_their_kind(address: str, kind: str) -> None:
    assert non_public_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:84e5", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert non_public_kind(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("host", ["10.0.0.1", "127.0.0.1", "::1", "2130706433", "0x7f.1"])
def test_a_private_literal_in_any_spelling_is_refused_naming_the_rule_and_the_variable(
    host: str,
) -> None:
    with pytest.raises(HostNotAllowed) as caught:
        check_public(host, 993)
    assert "Loopback, private, link-local" in caught.value.message
    assert "MAILROOM_ALLOW_PRIVATE_HOSTS=1" in (caught.value.hint or "")


def test_the_operator_and_an_allowing_policy_check_no_host() -> None:
    OPERATOR.admit(("10.0.0.1", 993), ("127.0.0.1", 587))
    HostPolicy(allow_private=True, quiet_greetings=True).admit(("169.254.1.1", 993))


def test_a_member_policy_refuses_a_private_smtp_host_after_a_public_incoming_one() -> None:
    policy = HostPolicy(allow_private=False, quiet_greetings=True)
    with pytest.raises(HostNotAllowed):
        policy.admit(("93.184.215.14", 993), ("192.168.0.10", 587))


def test_the_limiter_allows_n_a_minute_per_user_then_429_until_the_oldest_ages_out() -> None:
    now = [1000.0]
    limiter = ConnectLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        limiter.spend(1)
    limiter.spend(2)  # another user has their own count
    now[0] += 20
    with pytest.raises(RateLimited) as caught:
        limiter.spend(1)
    assert caught.value.retry_after == 40
    now[0] += 40.5
    limiter.spend(1)


def test_the_policy_counts_refused_attempts_too() -> None:
    policy = HostPolicy(allow_private=False, user_id=7, limiter=ConnectLimiter(2))
    for _ in range(2):
        with pytest.raises(HostNotAllowed):
            policy.admit(("10.0.0.1", 993))
    with pytest.raises(RateLimited):
        policy.admit(("10.0.0.1", 993))


def _greeting_failure(kind: type[NetworkError] | type[ProtocolError] | type[TLSError]) -> Exception:
    error = kind("The IMAP server h:1 rejected connect: SSH-2.0-OpenSSH_9.6")
    error.step, error.server = "connect", "IMAP server h:1"
    return error


def test_a_quiet_policy_drops_the_words_of_a_failed_greeting_keeping_its_kind() -> None:
    for kind in (NetworkError, ProtocolError):
        quiet = HostPolicy(allow_private=True, quiet_greetings=True)
        with pytest.raises(kind) as caught, quiet.screening():
            raise _greeting_failure(kind)
        assert "SSH" not in caught.value.message and "IMAP server h:1" in caught.value.message


def test_the_operator_sees_the_greeting_and_tls_errors_keep_their_words() -> None:
    with pytest.raises(ProtocolError, match="OpenSSH"), OPERATOR.screening():
        raise _greeting_failure(ProtocolError)
    quiet = HostPolicy(allow_private=True, quiet_greetings=True)
    with pytest.raises(TLSError, match="OpenSSH"), quiet.screening():
        raise _greeting_failure(TLSError)
