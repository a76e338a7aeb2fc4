"""Run pin-images' ``main()`` as ``python -m pin_images`` would, then save the registry client's request stats.

The benchmark starts this as a subprocess (interpreter start and imports count, as they do for the peers) and reads
``RegistryClient.stats`` from the JSON file named by ``$PIN_IMAGES_BENCH_STATS``, to cross-check the proxy's counts.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def main() -> int:
    from pin_images import cli

    out = os.environ.get("PIN_IMAGES_BENCH_STATS")
    clients: list[Any] = []
    if out:
        real = cli.make_resolver

        def capture(*args: Any, **kwargs: Any) -> Any:
            client = real(*args, **kwargs)
            clients.append(client)
            return client

        cli.make_resolver = capture  # type: ignore[assignment]
    code = cli.main(sys.argv[1:])
    if out:
        stats = clients[0].stats.as_dict() if clients and hasattr(clients[0], "stats") else {}
        with open(out, "w", encoding="utf-8") as f:
            json.dump(stats, f)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
