"""Where the crawler may connect, and for how long: the fence around every connection it opens.

A host name is resolved here, each address it resolves to is checked, and the connection is made
to the checked address itself, so nothing can slip in between the check and the connection (DNS
rebinding). Loopback, private (RFC 1918, ULA), link-local (169.254.169.254, the cloud metadata
service, among them), multicast, reserved, unspecified, shared (CGNAT) and other non-public
addresses are refused, also when they hide inside an IPv6 address (IPv4-mapped, 6to4, NAT64),
unless the source was registered to reach a private network. TLS still names and verifies the
host the URL names: httpcore takes the server name from the request, not from the address.

Each request may also run under a total deadline (:func:`fetch_deadline`): every read, write and
connect is given at most the time left, so a server trickling a byte at a time is cut off when
the deadline passes, not one read timeout after each byte.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Resolves a host name (or an address literal) and port to the addresses it stands for.
Resolver = Callable[[str, int], list[str]]

#: Where IPv4 addresses are embedded in IPv6 ones by NAT64 (RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Shared address space between a carrier's NAT and its customers (RFC 6598).
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_LOCALHOST_NAMES = ("localhost", "localhost.localdomain")

_deadline: ContextVar[float | None] = ContextVar("fetch_deadline", default=None)


class AddressRefusedError(httpcore.ConnectError):
    """A connection refused because the address is not on the public internet."""


class DeadlineExceededError(httpcore.ReadTimeout):
    """A request that went past its total deadline (not retried: it would only do the same)."""


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, by the system's resolver, in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def non_public(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is (None: a public one)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is not None and (kind := non_public(embedded)):
            return kind
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _SHARED, "a shared (CGNAT) address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (getattr(address, "is_site_local", False), "a site-local address"),
        (not address.is_global, "not a public address"),
    )
    return next((kind for refused, kind in checks if refused), None)


def private_host(host: str) -> str | None:
    """What ``host`` is when it names a non-public place without asking DNS (an address literal,
    or localhost): such a seed can be refused at registration. None otherwise."""
    host = host.strip("[]").lower().rstrip(".")
    if host in _LOCALHOST_NAMES or host.endswith(".localhost"):
        return "the local machine"
    try:
        return non_public(ipaddress.ip_address(host))
    except ValueError:
        return None


@contextmanager
def fetch_deadline(seconds: float) -> Iterator[None]:
    """Run the requests made inside under a total deadline of ``seconds`` (guarded clients only)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _within_deadline(timeout: float | None) -> tuple[float | None, bool]:
    """The timeout an operation gets (at most the time left), and whether the deadline clipped it."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout, False
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceededError("past the fetch deadline")
    if timeout is None or left < timeout:
        return left, True
    return timeout, False


@contextmanager
def _deadline_named(clipped: bool) -> Iterator[None]:
    """A timeout that came from the deadline is reported as the deadline, not as a slow read."""
    try:
        yield
    except httpcore.TimeoutException:
        if clipped:
            raise DeadlineExceededError("past the fetch deadline") from None
        raise


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the current fetch deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        timeout, clipped = _within_deadline(timeout)
        with _deadline_named(clipped):
            return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        timeout, clipped = _within_deadline(timeout)
        with _deadline_named(clipped):
            self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout, clipped = _within_deadline(timeout)
        with _deadline_named(clipped):
            return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to public addresses (any address with ``allow_private_network``), checked
    after resolution, and to the checked address itself."""

    def __init__(self, *, allow_private_network: bool, resolve: Resolver = system_resolver) -> None:
        self.allow_private_network = allow_private_network
        self.resolve = resolve

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout, clipped = _within_deadline(timeout)
        try:
            addresses = [ipaddress.ip_address(address) for address in self.resolve(host, port)]
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        refused = {address: non_public(address) for address in addresses}
        usable = addresses if self.allow_private_network else [a for a in addresses if not refused[a]]
        if not usable:
            address = addresses[0]
            raise AddressRefusedError(
                f"{host} is {address}, {refused[address]}: the source was not registered "
                "with --allow-private-network"
            )
        error: httpcore.ConnectError | None = None
        for address in usable:  # like socket.create_connection: the first that answers
            with _deadline_named(clipped):
                try:
                    stream = super().connect_tcp(str(address), port, timeout, local_address, socket_options)
                except httpcore.ConnectError as exc:
                    error = exc
                    continue
            return _DeadlineStream(stream)
        assert error is not None
        raise error


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a :class:`GuardedBackend` (httpx has no public way to choose a
    network backend, so the pool it built is replaced by one like it over ours)."""

    def __init__(self, backend: GuardedBackend) -> None:
        super().__init__(trust_env=False)
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def guarded_client(
    *, allow_private_network: bool, timeout: float, resolve: Resolver = system_resolver
) -> httpx.Client:
    """An HTTP client for crawling: guarded connections, no proxy from the environment (a proxy
    would connect for us, past the guard), redirects left to the crawler (it checks each hop)."""
    backend = GuardedBackend(allow_private_network=allow_private_network, resolve=resolve)
    return httpx.Client(
        transport=GuardedTransport(backend),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,
    )
