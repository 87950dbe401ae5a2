"""A value made on first use, once, whichever thread asks first (the process's clients)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class OnFirstUse(Generic[T]):
    """``make()``'s value, made when :meth:`get` is first called; an error is raised to that
    caller and the next one tries again."""

    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value, made now if it was not yet."""
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
        return self._value
