"""Pure host facts: Docker Hub's names, host:port splitting, and which addresses are internal (one place for all)."""

from __future__ import annotations

DOCKER_HUB = "docker.io"  # the name references use (distribution/reference's default domain)
LEGACY_HUB = "index.docker.io"  # the v1-era name, folded into docker.io when a reference is parsed
HUB_API_HOST = "registry-1.docker.io"  # where docker.io's distribution API is served
HUB_ALIASES = frozenset({DOCKER_HUB, LEGACY_HUB, HUB_API_HOST})

# Why an address is internal, as a message fragment: "<target> is <reason>".
LOOPBACK = "a loopback address"
PRIVATE = "a private address"
LINK_LOCAL = "a link-local address"
UNSPECIFIED = "an unspecified address"
# RFC 1918 and IPv6 unique local addresses; not ipaddress's is_private, which also counts documentation ranges.
_PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def canonical_registry(name: str) -> str:
    """Lower-cased host[:port] with every Docker Hub alias folded into ``docker.io``: the key for settings,
    mirrors and credentials."""
    name = name.strip().lower()
    return DOCKER_HUB if name in HUB_ALIASES else name


def api_host(registry: str) -> str:
    """host[:port] that serves ``registry``'s distribution API (Docker Hub's is not docker.io)."""
    return HUB_API_HOST if canonical_registry(registry) == DOCKER_HUB else registry


def split_host_port(hostport: str) -> tuple[str, str | None]:
    """(host, port) of host[:port], IPv6 brackets removed; port None when absent. ``::1`` alone is a host."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return hostport[1:], None
        rest = hostport[end + 1 :]
        return hostport[1:end], rest[1:] if rest.startswith(":") else None
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, port
    return hostport, None


DEFAULT_PORTS = {"http": 80, "https": 443}


def address(scheme: str, hostport: str) -> tuple[str, int]:
    """(host, port) to connect to for ``scheme://hostport``: the scheme's port when none is written."""
    host, port = split_host_port(hostport)
    return host, int(port) if port else DEFAULT_PORTS[scheme]


def host_of(hostport: str) -> str:
    """The host part of host[:port], lower-cased, without IPv6 brackets or a trailing dot."""
    return split_host_port(hostport)[0].lower().rstrip(".")


def netloc(url: str) -> str:
    """host[:port] of a URL, lower-cased, without any userinfo."""
    from urllib.parse import urlsplit  # here, like ipaddress below: --check parses no URL and no address

    return urlsplit(url).netloc.rpartition("@")[2].lower()


def origin(url: str) -> tuple[str, str]:
    """(scheme, host[:port]): two URLs share credentials only when these are equal."""
    from urllib.parse import urlsplit

    return urlsplit(url).scheme.lower(), netloc(url)


def address_class(address: str) -> str | None:
    """Why an IP address (or a ``localhost`` name) is internal, or None for a public address or another name."""
    host = host_of(address)
    if host == "localhost" or host.endswith(".localhost"):
        return LOOPBACK
    import ipaddress

    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_unspecified:
        return UNSPECIFIED
    if ip.is_link_local:
        return LINK_LOCAL
    if any(ip in net for net in map(ipaddress.ip_network, _PRIVATE) if net.version == ip.version):
        return PRIVATE
    return None


def is_loopback(hostport: str) -> bool:
    """localhost, *.localhost, 127.0.0.0/8 and ::1, with or without a port."""
    return address_class(hostport) == LOOPBACK
