"""A base for objects that hold a device, file or thread until closed."""

from __future__ import annotations

from typing import Self


class Closing:
    """Gives ``with obj:`` to a class that defines ``close()``.

    Leaving the block calls ``close()`` whether or not it raised; the
    exception, if any, goes on. ``close()`` must be safe to call twice,
    because callers often close explicitly inside the block as well.
    """

    def close(self) -> None:
        """Release what the object holds; subclasses must override this."""
        raise NotImplementedError(f"{type(self).__name__} must define close()")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
