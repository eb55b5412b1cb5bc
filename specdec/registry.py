"""A tiny name -> factory registry shared by drafters, policies and evaluation tasks.

Plug-ins register themselves from their own package: a registry made with `plugins="specdec.drafters"`
imports, the first time it is asked for a name, every module that package's metadata lists under that
entry-point group (pyproject.toml: `[project.entry-points."specdec.drafters"] mlm = "mlm_generate.drafter"`),
and those modules call `register` as built-in ones do. The engine never imports a plug-in's package.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Generic, TypeVar

from specdec.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """``reg.register("name")(factory)``; ``reg.get("name")`` raises with the known names listed."""

    def __init__(self, kind: str, plugins: str | None = None) -> None:
        self.kind = kind
        self.plugins = plugins  # entry-point group whose modules register more names, or None
        self._items: dict[str, Callable[..., T]] = {}
        self._checks: dict[str, Callable[..., None]] = {}
        self._loaded = plugins is None

    def register(self, name: str, check: Callable[..., None] | None = None
                 ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """`check(**options)`: the option values' own checks that need no model (a store file exists, a range
        holds), run by `check` before anything loads; it raises InputError with one line."""
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = factory
            if check is not None:
                self._checks[name] = check
            return factory

        return deco

    def check(self, name: str, **options) -> None:
        """Run `name`'s registered option check (nothing when it has none); unknown names raise as `get`."""
        self.get(name)
        if name in self._checks:
            self._checks[name](**options)

    def _load_plugins(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before loading: a plug-in module that asks the registry does not recurse
        for ep in entry_points(group=self.plugins):
            ep.load()  # the module registers its names on import

    def get(self, name: str) -> Callable[..., T]:
        self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def create(self, name: str, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._items
