"""The worker's policy for Python's cyclic garbage collector (`SHOPSTREAM_GC_*`)."""

import gc


def set_thresholds(thresholds: tuple[int, int, int] | None) -> None:
    """Collect generation 0 after this many more allocations than frees, and each older
    generation after this many collections of the one below; None keeps Python's."""
    if thresholds is not None:
        gc.set_threshold(*thresholds)


def freeze_start_up() -> None:
    """Move every object alive now (imports, Faust's services, the tables) out of the
    collector's sight, once its garbage is collected, so that no later collection walks them."""
    gc.collect()
    gc.freeze()
