"""pin-images: pin Dockerfile image references to sha256 manifest digests."""

__version__ = "0.1.0"
