"""One exception tree for pin-images; the CLI maps every class to an exit code and a one-line message."""

from __future__ import annotations


class PinImagesError(Exception):
    """Base of every error pin-images raises on purpose.

    ``str(err)`` is the complete one-line message shown to the user; it never contains a secret.
    """


class InvalidReferenceError(PinImagesError):
    """An image reference that the distribution reference grammar rejects."""

    def __init__(self, text: str, cause: str) -> None:
        self.text = text
        self.cause = cause
        super().__init__(f"invalid image reference {text!r}: {cause}")


class DockerfileError(PinImagesError):
    """A Dockerfile that cannot be read or parsed; names the file and line."""

    def __init__(self, cause: str, path: str = "", line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.cause = cause
        where = path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {cause}")


class FileFormatError(DockerfileError):
    """A Compose, Kubernetes, workflow, GitLab CI or devcontainer file that cannot be parsed; names file and line."""


class ConfigError(PinImagesError):
    """Bad command-line option or configuration file."""


class RegistryError(PinImagesError):
    """Anything that went wrong talking to a registry; names the host (and the image where known)."""

    def __init__(self, message: str, host: str = "") -> None:
        self.host = host
        super().__init__(message)


class NotFoundError(RegistryError):
    """The registry answered that the repository, tag or digest does not exist."""


class AuthError(RegistryError):
    """The registry refused us (401/403) after trying the credentials we had."""


class BadResponseError(RegistryError):
    """The registry (or a token server) answered with something we cannot trust or understand."""


class RegistryConnectionError(RegistryError):
    """Could not reach the registry: refused, DNS, TLS or timeout."""


class CredentialError(PinImagesError):
    """A credential source (docker config, credential helper, Google ADC) is broken."""
