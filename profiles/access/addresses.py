"""Where a request comes from: the one place the caller's address is read.

The caller's address is the peer address of the connection, unless that peer is one of
the ``TRUSTED_PROXIES`` networks (docs/operations.md#configuration). Then the
``X-Forwarded-For`` entries are read from the right, skipping every trusted proxy, and the
right-most entry that is not a trusted proxy is the caller: entries to its left were written
by the caller itself and may be anything. A malformed entry met on that walk (a name, a port,
garbage) ends it: the peer address is used, as if no proxy had forwarded the call. An
``X-Forwarded-For`` from a peer that is not a trusted proxy is never read. The throttles,
the sign-in lockout, the audit trail, the tokens' last use, the request log and the profile
APIs' network allowlist all use :func:`caller_address`.

The throttles and the lockout count a caller by :func:`counted_as`: an IPv6 caller by its
/64, the block one subscriber's network is given, so that rotating through the addresses of
that block gains nothing. The allowlist, the audit trail and the logs keep the whole address.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from django.conf import settings

type Address = ipaddress.IPv4Address | ipaddress.IPv6Address
type Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Request(Protocol):
    """What :func:`caller_address` reads of a request: its ``META`` (the WSGI environment)."""

    @property
    def META(self) -> Mapping[str, Any]: ...


def caller_address(request: Request) -> str | None:
    """The caller's address as text; ``None`` when the request has none."""
    return address_of(request.META)


def address_of(environ: Mapping[str, Any]) -> str | None:
    """:func:`caller_address` read from the WSGI environ (a Django request's ``META``), for
    the profile APIs' fast lane (docs/operations.md#the-api-path), which makes no request."""
    peer: str | None = environ.get("REMOTE_ADDR") or None
    proxies = configured_networks(tuple(settings.TRUSTED_PROXIES))
    if peer is None or not proxies or not within(peer, proxies):
        return peer
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if not forwarded.strip():
        return peer
    entries = [entry.strip() for entry in forwarded.split(",")]
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            return peer
        if not within(address, proxies):
            return str(address)
    # Every forwarded hop is a trusted proxy: the left-most one is the furthest known.
    return str(parse_address(entries[0]))


# An IPv6 caller is counted by its network of this many bits.
IPV6_COUNTED_PREFIX = 64


def counted_as(address: str) -> str:
    """What the throttles and the sign-in lockout count ``address`` under: an IPv4 address
    itself, an IPv6 address the first address of its /64 (``2001:db8:1:2::``, still an
    address, so it fits where one is stored); text that is no address, itself."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((parsed, IPV6_COUNTED_PREFIX), strict=False)
        return str(network.network_address)
    return address if parsed is None else str(parsed)


def caller_counted_as(request: Request) -> str | None:
    """The caller as the sign-in lockout counts it (django-axes' ``AXES_CLIENT_IP_CALLABLE``)."""
    address = caller_address(request)
    return None if address is None else counted_as(address)


# ::ffff:0:0/96 holds the IPv4-mapped addresses.
_MAPPED_PREFIX = 96


def parse_network(text: str) -> Network:
    """``text`` as a network. An IPv4-mapped IPv6 network (``::ffff:192.0.2.0/120``) is the
    IPv4 network it maps (``192.0.2.0/24``): a caller's address is read that way
    (:func:`parse_address`), so it would never be in the IPv6 one.

    Raises ``ValueError`` for text that is no network.
    """
    network = ipaddress.ip_network(text, strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= _MAPPED_PREFIX:
        mapped = parse_address(str(network.network_address))
        if isinstance(mapped, ipaddress.IPv4Address):
            return ipaddress.IPv4Network((mapped, network.prefixlen - _MAPPED_PREFIX))
    return network


def parse_address(text: str) -> Address | None:
    """``text`` as an IP address (an IPv4-mapped IPv6 address as IPv4), or ``None``."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: str | Address, networks: Iterable[Network]) -> bool:
    """Whether ``address`` is in one of ``networks``; an unreadable address is in none."""
    parsed = parse_address(address) if isinstance(address, str) else address
    return parsed is not None and any(parsed in network for network in networks)


@functools.lru_cache(maxsize=8)
def configured_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """Networks of a setting (``TRUSTED_PROXIES``, ``METRICS_ALLOWED_NETWORKS``), parsed
    once (settings.py has validated them); an IPv4-mapped entry is the IPv4 network it maps
    (:func:`parse_network`)."""
    return tuple(parse_network(entry) for entry in entries)
