"""Work started in many threads at once, each with its own database
connection: for the tests of what concurrent writers may and may not do."""

import threading
from collections.abc import Callable

from django.db import connection


def run_together(
    count: int, work: Callable[..., object], *, prepare: Callable[[int], object] | None = None
) -> list:
    """Run work(i) in `count` threads released at once; returns each result or
    exception. With `prepare`, each thread first runs prepare(i) (signing in,
    say) and then work(i, prepared), so the race is only over `work`."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(i: int) -> None:
        try:
            # Connect first, so the barrier releases threads that are ready to write.
            connection.ensure_connection()
            prepared = prepare(i) if prepare is not None else None
            barrier.wait(timeout=60)
            results[i] = work(i) if prepare is None else work(i, prepared)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return results
