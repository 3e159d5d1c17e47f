"""A name -> component registry shared by losses, heads, datasets and stages.

Recipes name components; they never carry import paths, so a recipe cannot run code and
renaming a module cannot break a recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from distill.errors import DistillError, did_you_mean

T = TypeVar("T")


class RegistryError(DistillError):
    pass


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise RuntimeError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str, *, file: str | None = None, field: str | None = None) -> T:
        if name not in self._items:
            known = ", ".join(sorted(self._items))
            hint = did_you_mean(name, self._items) or f"known: {known}"
            raise RegistryError(file, field, f"a known {self.kind} name", got=name, hint=hint)
        return self._items[name]

    def remove(self, name: str) -> None:
        """Forget a name (tests register toy components for one test, then remove them)."""
        del self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())
