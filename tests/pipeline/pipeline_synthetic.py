"""The pipeline's synthetic task: the planted rule of ``synthetic`` plus exact copies across layers."""

from synthetic import TAGS, planted, write_store

__all__ = ["COPIED_UNITS", "H", "L", "PLANTED", "TAGS", "duplicated", "write_store"]


L, H = 3, 8
PLANTED = (H + 2, H + 5)  # flat indices of the informative neurons: layer 1, units 2 and 5
COPIED_UNITS = (0, 1, 3, 4)  # layer 0's units 0, 1, 3, 4 are exact copies of layer 1's


def duplicated(n: int, seed: int):
    """Planted rule on layer 1 (units 2, 5); layer 0 holds exact copies of layer 1's noise units."""
    acts, y = planted(n, n_layers=L, hidden=H, seed=seed, planted_layer=1, units=(2, 5))
    for u in COPIED_UNITS:
        acts[:, 0, u] = acts[:, 1, u]
    return acts, y
