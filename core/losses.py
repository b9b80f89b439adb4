"""Training losses that know how the 230 space groups group into lattices and systems."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from core.symmetry import CRYSTAL_SYSTEMS, bravais_membership, system_membership


class LatticeAwareCrossentropy(keras.losses.Loss):
    """Space-group cross-entropy plus ``weight`` times the cross-entropies of the crystal
    system and of the Bravais lattice, both read off the same space-group softmax.

    The plain loss credits nothing to a wrong space group of the right lattice; these two
    terms do, so that a model that cannot yet tell ``C2/c`` from ``C2/m`` is still pushed to
    tell a C-centred monoclinic lattice from a primitive one. The network and its output are
    unchanged (no extra heads), so a model trained with it saves and loads like any other.

    Args:
        weight: how much the two coarser terms count (0 gives plain cross-entropy).
    """

    def __init__(self, weight: float = 0.5, name: str = "lattice_aware_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not (np.isfinite(weight) and weight >= 0):
            raise ValueError(f"the lattice loss weight must be 0 or more, not {weight}")
        self.weight = float(weight)
        self._groupings = np.concatenate([system_membership(), bravais_membership()], axis=1)
        self._split = len(CRYSTAL_SYSTEMS)

    def call(self, y_true, y_pred):
        crossentropy = keras.losses.categorical_crossentropy
        y_true = ops.cast(y_true, y_pred.dtype)
        loss = crossentropy(y_true, y_pred)
        if self.weight == 0.0:
            return loss
        groupings = ops.convert_to_tensor(self._groupings, dtype=y_pred.dtype)
        true_groups, predicted_groups = y_true @ groupings, y_pred @ groupings
        coarse = (crossentropy(true_groups[:, :self._split], predicted_groups[:, :self._split])
                  + crossentropy(true_groups[:, self._split:], predicted_groups[:, self._split:]))
        return loss + self.weight * coarse

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}
