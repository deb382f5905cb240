"""Where a request comes from: the one place the caller's address is read.

The caller's address is the peer address of the connection, unless that peer is one of
the ``TRUSTED_PROXIES`` networks (docs/operations.md#configuration). Then the
``X-Forwarded-For`` entries are read from the right, skipping every trusted proxy, and the
right-most entry that is not a trusted proxy is the caller: entries to its left were written
by the caller itself and may be anything. A malformed entry met on that walk (a name, a port,
garbage) ends it: the peer address is used, as if no proxy had forwarded the call. An
``X-Forwarded-For`` from a peer that is not a trusted proxy is never read. The throttles,
the audit trail, the request log and the profile APIs' network allowlist all use
:func:`caller_address`.
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
    proxies = trusted_proxies(tuple(settings.TRUSTED_PROXIES))
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
def trusted_proxies(entries: Sequence[str]) -> tuple[Network, ...]:
    """The ``TRUSTED_PROXIES`` networks, parsed once (settings.py has validated them)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
