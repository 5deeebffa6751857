"""Fetch a URL a client gave us (an image function's `data`), without letting it reach inside.

Server-side request forgery is the risk: a URL naming the metadata service, a private network
or this host. So every hop is resolved first and each address it resolves to is checked; the
connection then goes to that checked address (a second DNS answer cannot swap it), with TLS
verified against the URL's host name. Refused: schemes other than https, private, loopback,
link-local (the metadata service), multicast, reserved and unspecified addresses, IPv4 mapped
into IPv6 likewise. Bounded: a total deadline, a size cap (Content-Length and the bytes read),
a few redirects, each checked as a new URL. `allow_loopback` (the local stack, behind an
explicit setting) also lets http:// and loopback addresses through, nothing else private.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

REDIRECTS = (301, 302, 303, 307, 308)


class FetchRefused(ValueError):
    """A URL we will not fetch, or a fetch that failed; the message says why."""


@dataclass(frozen=True)
class Policy:
    max_bytes: int = 5 * 1024 * 1024
    timeout: float = 5.0  # seconds, for the whole fetch, redirects included
    max_redirects: int = 3
    allow_loopback: bool = False


def fetch(url: str, policy: Policy = Policy()) -> bytes:
    """The body of a GET of `url` (after redirects); FetchRefused otherwise."""
    deadline = time.monotonic() + policy.timeout
    for _ in range(policy.max_redirects + 1):
        status, location, body = _get(url, policy, deadline)
        if status not in REDIRECTS:
            if status != 200:
                raise FetchRefused(f"the URL answered HTTP {status}")
            return body
        if not location:
            raise FetchRefused(f"the URL answered HTTP {status} without a Location")
        url = urljoin(url, location)
    raise FetchRefused(f"more than {policy.max_redirects} redirects")


def checked_address(url: str, policy: Policy) -> tuple[str, str, int, str]:
    """(scheme, host, port, the address to connect to), or FetchRefused: nothing connects
    before this has passed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise FetchRefused(f"not a valid URL ({err})") from None
    schemes = ("https", "http") if policy.allow_loopback else ("https",)
    if parts.scheme not in schemes:
        raise FetchRefused(f"only {' and '.join(schemes)} URLs are fetched")
    host = parts.hostname
    if not host:
        raise FetchRefused("the URL has no host")
    if parts.username or parts.password:
        raise FetchRefused("URLs with credentials are not fetched")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchRefused(f"the host {host!r} does not resolve") from None
    addresses = [info[4][0] for info in infos]
    for address in addresses:  # all of them: the connection could use any
        _check_ip(ipaddress.ip_address(address.split("%")[0]), host, policy)
    return parts.scheme, host, port, addresses[0]


def _check_ip(ip, host: str, policy: Policy) -> None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback and policy.allow_loopback:
        return
    # is_global is False for private, loopback, link-local, reserved, unspecified and shared
    # addresses; multicast ranges count as global, so they are named.
    if ip.is_multicast or not ip.is_global:
        raise FetchRefused(f"the host {host!r} is not a public address")


def _get(url: str, policy: Policy, deadline: float) -> tuple[int, str | None, bytes]:
    scheme, host, port, address = checked_address(url, policy)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _connection(scheme, host, port, address, _left(deadline))
    try:
        conn.request("GET", path, headers={"Host": parts.netloc.rpartition("@")[2],
                                           "User-Agent": "labelloop", "Accept": "image/*"})
        response = conn.getresponse()
        if response.status in REDIRECTS:
            return response.status, response.getheader("Location"), b""
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > policy.max_bytes:
            raise FetchRefused(f"larger than {policy.max_bytes} bytes")
        body, sock = bytearray(), conn.sock
        while True:
            if sock is not None and sock.fileno() != -1:  # the deadline covers the whole body
                sock.settimeout(_left(deadline))
            chunk = response.read(min(65536, policy.max_bytes + 1 - len(body)))
            if not chunk:
                return response.status, None, bytes(body)
            body += chunk
            if len(body) > policy.max_bytes:
                raise FetchRefused(f"larger than {policy.max_bytes} bytes")
    except TimeoutError:
        raise FetchRefused(f"no answer within {policy.timeout:g} s") from None
    except (OSError, http.client.HTTPException) as err:
        raise FetchRefused(f"the fetch failed ({type(err).__name__})") from None
    finally:
        conn.close()


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchRefused("the fetch took too long")
    return left


def _connection(scheme: str, host: str, port: int, address: str, timeout: float):
    """A connection to the checked `address`, TLS verified against `host`."""
    if scheme == "http":
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
    else:
        conn = _PinnedHTTPS(address, port, timeout=timeout,
                            context=ssl.create_default_context())
        conn.server_hostname = host
    return conn


class _PinnedHTTPS(http.client.HTTPSConnection):
    server_hostname = ""

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_hostname)
