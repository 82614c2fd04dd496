"""What the widget apps share: redraw on a user's change, not on the app's own updates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Redraws:
    """Mixin for the apps: a control changed by the app itself inside :meth:`quietly` does not
    redraw (one redraw follows the whole update); a change made by the user redraws at once."""

    _quiet = False

    @contextmanager
    def quietly(self) -> Iterator[None]:
        """Update controls without a redraw per change."""
        previous, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = previous

    def redraw(self) -> None:
        """Draw the app's output again (``self.render()``)."""
        self.render()

    def _on_change(self, change) -> None:
        if not self._quiet:
            self.redraw()
