"""Ray for `audit-data --engine ray` and `run --engine ray`: join a cluster (`--ray-address`) or start a
local instance, and shut down only what was started here (a caller's own ray.init is left alone)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from globalign.errors import GlobalignError


@contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[Any]:
    """The `ray` module, initialised: with `address` (e.g. "auto" on a cluster node, ray://head:10001) the
    cluster's; without, a local instance with `num_cpus` CPUs (None: Ray counts them)."""
    try:
        import ray
    except ImportError:
        raise GlobalignError("--engine ray needs Ray: pip install 'globalign[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise GlobalignError(f"cannot start or join Ray at {address or 'a local instance'} ({exc})") from None
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()
