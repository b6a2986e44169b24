"""Egress rules: where probes and webhooks may connect and where a webhook secret may go (docs/architecture.md §9).

- **Addresses.** A target may resolve only to globally routable addresses, unless the deployment allows more
  (template parameter ``AllowedTargetRanges`` → ``ALLOWED_TARGET_RANGES``: CIDRs and the names ``loopback``,
  ``link-local``, ``private``). Loopback, link-local (the instance metadata and container credential endpoints),
  private, shared, reserved and multicast ranges are refused otherwise, IPv4 inside IPv6 included. The check runs
  on the address actually connected to, after resolution (``connect_addresses``): a name that resolves to a
  refused address is never connected to, whatever it resolved to at planning. ``livefire run`` (local mode) allows
  loopback and private ranges by default: the person running it is the deployment.
- **Real or sandbox.** ``livefire run`` serves the hosts under the sandbox's own domain (``*.sandbox``) from its
  loopback servers and tells the functions which ``host:port`` those are (``LIVEFIRE_SANDBOX_HOSTS``, set by the
  local runner only): Plan marks each probe target and webhook ``real`` or ``sandbox`` (``reach_of``) once, in the
  plan. Every other URL is contacted for real and checked as above; on AWS every target is real.
- **Secrets.** A webhook's ``headersSecret`` is a Secrets Manager JSON secret holding the headers and query
  parameters to send *and* the URL prefixes they may be sent to (``SecretBox``); it is sent only over https and
  only to a URL inside one of those prefixes (``SecretBox.for_url``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
RANGES_ENV = "ALLOWED_TARGET_RANGES"
# The local runner's list of the "host:port"s its sandbox serves (a JSON array); never set on AWS.
SANDBOX_HOSTS_ENV = "LIVEFIRE_SANDBOX_HOSTS"
# Whether a target was contacted over the network as named, or answered by the local sandbox mesh.
Reach = Literal["real", "sandbox"]
# The names a range list may use besides CIDRs.
NAMED_RANGES: dict[str, tuple[str, ...]] = {
    "loopback": ("127.0.0.0/8", "::1/128"),
    "link-local": ("169.254.0.0/16", "fe80::/10"),
    "private": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"),
}
LOCAL_RANGES = "loopback,private"  # livefire run's default
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# A resolver: (host, port) -> the addresses it names (socket.getaddrinfo in production, a table in tests).
Resolver = Callable[[str, int], list[str]]


class EgressRefused(Exception):
    """A connection or a secret refused by the egress rules; the message names the host and the rule."""


def parse_ranges(text: str) -> tuple[IPNetwork, ...]:
    """``"loopback,10.1.0.0/16"`` → networks; ValueError naming the first item that is neither."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        for cidr in NAMED_RANGES.get(item.lower(), (item,)):
            try:
                networks.append(ipaddress.ip_network(cidr, strict=False))
            except ValueError:
                raise ValueError(f"{RANGES_ENV}: {item!r} is neither a CIDR nor one of "
                                 f"{', '.join(NAMED_RANGES)}") from None
    return tuple(networks)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), which is where packets really go."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def address_class(address: IPAddress) -> str | None:
    """Why an address is not globally routable (``loopback``, ``link-local``, ...), or None if it is."""
    for name, test in (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
                       ("link-local", address.is_link_local), ("multicast", address.is_multicast),
                       ("private", address.is_private), ("reserved", address.is_reserved)):
        if test:
            return name
    if not address.is_global:
        return "non-global"
    embedded = _embedded_ipv4(address)
    return address_class(embedded) if embedded is not None else None


@dataclass(frozen=True)
class EgressPolicy:
    """Which addresses probes and webhooks may connect to. ``unrestricted``: any (livefire used as a library,
    outside Lambda, with no setting at all)."""

    allowed: tuple[IPNetwork, ...] = ()
    unrestricted: bool = False

    @classmethod
    def from_ranges(cls, text: str) -> EgressPolicy:
        return cls(allowed=parse_ranges(text))

    def refusal(self, address: str) -> str | None:
        """Why connecting to ``address`` is refused, or None when it is allowed."""
        if self.unrestricted:
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        why = address_class(ip)
        if why is None:
            return None
        embedded = _embedded_ipv4(ip)
        if any(ip in net or (embedded is not None and embedded in net) for net in self.allowed):
            return None
        return f"{ip} is a {why} address, outside this deployment's allowed ranges ({RANGES_ENV})"


@lru_cache(maxsize=8)
def _policy_for(raw: str | None, on_lambda: bool) -> EgressPolicy:
    if raw is None:
        return EgressPolicy() if on_lambda else EgressPolicy(unrestricted=True)
    return EgressPolicy.from_ranges(raw)


def current_policy(environ: Mapping[str, str] = os.environ) -> EgressPolicy:
    """The policy of this process: ``ALLOWED_TARGET_RANGES`` (set by the template on every function, empty =
    global addresses only). Unset on Lambda means the same (fail closed); unset elsewhere means unrestricted."""
    return _policy_for(environ.get(RANGES_ENV), bool(environ.get("AWS_LAMBDA_FUNCTION_NAME")))


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def ip_literal(host: str) -> str | None:
    """The address a host name is written as (``10.0.0.1``, ``[fd00::1]``), or None for a name to resolve."""
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def check_addresses(host: str, addresses: list[str], policy: EgressPolicy) -> list[str]:
    """``addresses`` (what ``host`` resolved to), if the policy allows every one; EgressRefused otherwise (a name
    that may resolve to a refused address is not trusted to resolve elsewhere next time)."""
    for address in addresses:
        why = policy.refusal(address)
        if why is not None:
            raise EgressRefused(f"{host}: {why}")
    return addresses


def connect_addresses(host: str, port: int, policy: EgressPolicy,
                      resolve: Resolver = system_resolver) -> list[str]:
    """The addresses to connect to for ``host``, resolved once and checked (``check_addresses``).
    ``socket.gaierror`` (no such name) passes through."""
    literal = ip_literal(host)
    return check_addresses(host, [literal] if literal is not None else resolve(host, port), policy)


def connect(host: str, port: int, policy: EgressPolicy, timeout: float,
            resolve: Resolver = system_resolver) -> socket.socket:
    """A TCP connection to ``host`` at an address the policy allows: resolved once, every address checked, then
    the first that answers (as ``socket.create_connection`` would try them)."""
    failure: OSError = OSError(f"{host}: no address to connect to")
    for address in connect_addresses(host, port, policy, resolve):
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            failure = exc
    raise failure


def check_targets(urls: Iterable[tuple[str, str]], policy: EgressPolicy, *, resolve: Resolver = system_resolver,
                  overrides: Mapping[str, str] | None = None) -> None:
    """Refuse (EgressRefused naming the field) any ``(field, url)`` whose host resolves to a refused address.

    A name that does not resolve now is left to the connect-time check. ``overrides`` is the sandbox's DNS
    (``{"host:port": "ip:port"}``), applied as the probes apply it."""
    for field, url in urls:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        mapped = (overrides or {}).get(f"{host}:{port}")
        try:
            if mapped is not None:
                connect_addresses(mapped.rpartition(":")[0], port, policy, resolve)
            else:
                connect_addresses(host, port, policy, resolve)
        except EgressRefused as exc:
            raise EgressRefused(f"{field}: {exc}") from None
        except (OSError, UnicodeError):
            continue  # unresolvable now: the connect-time check decides


# ---------------------------------------------------------------- real or sandbox


def host_port(url: str) -> str:
    """``host:port`` of a URL, with the scheme's default port (``http://a.b/x`` -> ``a.b:80``)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def sandbox_hosts(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """``LIVEFIRE_SANDBOX_HOSTS``: the ``host:port``s the local sandbox serves (none when unset, as on AWS)."""
    raw = environ.get(SANDBOX_HOSTS_ENV, "").strip()
    try:
        hosts = json.loads(raw) if raw else []
    except ValueError:
        hosts = None
    if not isinstance(hosts, list) or not all(isinstance(host, str) for host in hosts):
        raise ValueError(f'{SANDBOX_HOSTS_ENV} must be a JSON array of "host:port" strings')
    return frozenset(hosts)


def reach_of(url: str, served_by_sandbox: frozenset[str]) -> Reach:
    """``sandbox`` when the local sandbox answers for the URL's ``host:port``, else ``real``."""
    return "sandbox" if host_port(url) in served_by_sandbox else "real"


# ---------------------------------------------------------------- secrets bound to URL prefixes


def _origin_and_path(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path or "/"


def url_within(url: str, prefix: str) -> bool:
    """Whether ``url`` lies inside ``prefix``: same scheme, host and port, and a path under the prefix's path at
    a segment boundary (``https://h/hooks`` holds ``https://h/hooks/x``, not ``https://h/hooksmith``)."""
    try:
        scheme, host, port, path = _origin_and_path(url)
        p_scheme, p_host, p_port, p_path = _origin_and_path(prefix)
    except ValueError:
        return False
    if (scheme, host, port) != (p_scheme, p_host, p_port) or not host:
        return False
    folder = p_path.rstrip("/")
    return path == folder or path.startswith(folder + "/")


@dataclass(frozen=True)
class SecretBox:
    """A webhook secret as Secrets Manager holds it: ``{"headers": {...}, "query": {...}, "urlPrefixes": [...]}``.

    ``headers`` and ``query`` (both optional, string values) are sent; ``urlPrefixes`` (required, https URLs)
    bind them to where they may go."""

    name: str
    headers: dict[str, str]
    query: dict[str, str]
    url_prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, name: str, raw: str | None) -> SecretBox:
        """EgressRefused (naming the secret, never a value) for anything but the documented shape."""
        shape = ('must be a JSON object {"headers": {...}, "query": {...}, "urlPrefixes": ["https://..."]} '
                 "binding its values to the URL prefixes they may be sent to")
        try:
            document: Any = json.loads(raw or "")
        except ValueError:
            document = None
        if not isinstance(document, dict) or set(document) - {"headers", "query", "urlPrefixes"}:
            raise EgressRefused(f"headersSecret {name!r} {shape}")
        headers, query = document.get("headers", {}), document.get("query", {})
        prefixes = document.get("urlPrefixes")
        for section in (headers, query):
            if not isinstance(section, dict) or not all(isinstance(v, str) for v in section.values()):
                raise EgressRefused(f"headersSecret {name!r}: headers and query must map names to strings")
        for header, value in headers.items():
            if not _HEADER_NAME.match(str(header)) or "\r" in value or "\n" in value:
                raise EgressRefused(f"headersSecret {name!r}: header {str(header)[:64]!r} has an invalid name or value")
        if not isinstance(prefixes, list) or not prefixes or not all(isinstance(p, str) for p in prefixes):
            raise EgressRefused(f"headersSecret {name!r} has no urlPrefixes: {shape}")
        for prefix in prefixes:
            parts = urlsplit(prefix)
            if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc:
                raise EgressRefused(f"headersSecret {name!r}: urlPrefixes must be https URLs without query, "
                                    f"fragment or credentials (got {prefix[:200]!r})")
        return cls(name, {str(k): v for k, v in headers.items()}, {str(k): v for k, v in query.items()},
                   tuple(prefixes))

    def for_url(self, url: str) -> SecretBox:
        """Itself, if its values may be sent to ``url``; EgressRefused otherwise (nothing is sent)."""
        if urlsplit(url).scheme != "https":
            raise EgressRefused(f"headersSecret {self.name!r} is only ever sent over https")
        if not any(url_within(url, prefix) for prefix in self.url_prefixes):
            raise EgressRefused(f"headersSecret {self.name!r} may not be sent to this URL: it is bound to "
                                f"{', '.join(self.url_prefixes)}")
        return self

    @property
    def values(self) -> list[str]:
        """Every secret value, for the answer's redaction."""
        return [*self.headers.values(), *self.query.values()]
