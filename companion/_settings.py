"""Fixed settings of a layer: shown in its ``repr`` and saved with (and restored from) its ``state_dict``.

A layer's sizes live in the shapes of its parameters, which ``load_state_dict`` checks. Its other fixed
settings (an activation, a slope, a range of admissible steps, a padding) would otherwise be forgotten by a
checkpoint: loading into a layer built with other settings would silently compute something else. The
mixin stores them as the module's "extra state", so loading restores them (after validating them again).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FixedSettings"]


class FixedSettings:
    """Mixin for ``nn.Module`` classes: ``_settings`` names the attributes that are fixed settings.

    ``_sizes`` names attributes shown in ``repr`` before them but not saved (sizes, which the shapes of the
    parameters already carry, and ``load_state_dict`` checks).

    The class implements ``_configure(**settings)``, which validates the settings and sets them; its
    ``__init__`` calls it, and so does loading a state dict.
    """

    _settings: tuple[str, ...] = ()
    _sizes: tuple[str, ...] = ()

    def _configure(self, **settings: Any) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """The fixed settings, by name (plain Python values)."""
        return {name: getattr(self, name) for name in self._settings}

    def extra_repr(self) -> str:
        shown = [*self._sizes, *self._settings]
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)

    def get_extra_state(self) -> dict[str, Any]:
        return self.settings()

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, dict) or set(state) != set(self._settings):
            raise ValueError(
                f"{type(self).__name__}: the saved settings {state!r} do not name {list(self._settings)}; "
                "the state dict was saved from another kind of layer."
            )
        self._configure(**state)
