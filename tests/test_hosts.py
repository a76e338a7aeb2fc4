"""Pure host facts: Docker Hub's names, host:port splitting, internal address classes."""

from __future__ import annotations

import pytest

from pin_images import hosts
from pin_images.hosts import address_class, api_host, canonical_registry, is_loopback, split_host_port


@pytest.mark.parametrize("hostport", ["localhost", "LOCALHOST:1", "a.localhost:5000", "127.0.0.1", "[::1]:80", "::1"])
def test_is_loopback(hostport: str) -> None:
    assert is_loopback(hostport)


@pytest.mark.parametrize("hostport", ["localhost.example.com", "10.0.0.1", "192.168.1.1:5000", "example.com"])
def test_is_not_loopback(hostport: str) -> None:
    assert not is_loopback(hostport)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("docker.io", "docker.io"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        (" Docker.IO ", "docker.io"),
        ("ghcr.io", "ghcr.io"),
        ("Localhost:5000", "localhost:5000"),
        ("docker.io:443", "docker.io:443"),  # a port makes it another registry, as docker sees it
    ],
)
def test_canonical_registry(name: str, expected: str) -> None:
    assert canonical_registry(name) == expected


@pytest.mark.parametrize(
    ("registry", "expected"),
    [("docker.io", "registry-1.docker.io"), ("index.docker.io", "registry-1.docker.io"), ("ghcr.io", "ghcr.io"),
     ("localhost:5000", "localhost:5000")],
)
def test_api_host(registry: str, expected: str) -> None:
    assert api_host(registry) == expected


@pytest.mark.parametrize(
    ("hostport", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com:5000", ("example.com", "5000")),
        ("[::1]:5000", ("::1", "5000")),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),  # bare IPv6: every colon belongs to the address
        ("[::1", ("::1", None)),  # unclosed bracket: best effort, no crash
    ],
)
def test_split_host_port(hostport: str, expected: tuple[str, str | None]) -> None:
    assert split_host_port(hostport) == expected


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1", hosts.LOOPBACK),
        ("127.9.9.9:80", hosts.LOOPBACK),
        ("[::1]:5000", hosts.LOOPBACK),
        ("localhost", hosts.LOOPBACK),
        ("[::ffff:127.0.0.1]", hosts.LOOPBACK),  # IPv4-mapped: the same socket as 127.0.0.1
        ("10.0.0.5:8080", hosts.PRIVATE),
        ("172.16.0.1", hosts.PRIVATE),
        ("192.168.1.1", hosts.PRIVATE),
        ("[fd00::1]", hosts.PRIVATE),  # fc00::/7
        ("169.254.169.254", hosts.LINK_LOCAL),  # cloud metadata services live here
        ("[fe80::1]", hosts.LINK_LOCAL),
        ("0.0.0.0", hosts.UNSPECIFIED),
        ("[::]:80", hosts.UNSPECIFIED),
        ("8.8.8.8", None),
        ("[2001:4860:4860::8888]", None),
        ("registry.example.com", None),  # a name says nothing until it is looked up
    ],
)
def test_address_class(address: str, expected: str | None) -> None:
    assert address_class(address) == expected
