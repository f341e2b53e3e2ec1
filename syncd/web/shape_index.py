"""Routing for the paths that begin with a variable (``/{db}``, ``/{db}/{docid}``, ...).

aiohttp indexes resources by their fixed path prefix. Every database route starts with the
``{db}`` variable, so all of them land in one bucket and a request was matched against each in
turn: ``PUT /{db}/{docid}`` came after some 30 regular expressions, ~45 us of event-loop time
per request. ``ShapeIndex`` is one resource holding those routes; for a request it only tries
the routes whose *shape* fits the path (the number of segments, and the fixed segments such as
``_changes`` or ``_local``), still in registration order and still by each route's own
pattern, so the outcome (the route, 404 or 405) is exactly what aiohttp's walk would give.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_urldispatcher import (
    AbstractResource,
    AbstractRoute,
    DynamicResource,
    PlainResource,
    Resource,
    UrlMappingMatchInfo,
    _InfoDict,
)
from yarl import URL

_VARIABLE = re.compile(r"\{[^{}]*\}")
_TAIL = "\x00tail"  # a variable whose pattern may span segments (``{name:.+}``)
_ANY = "\x00any"  # a segment holding a one-segment variable


@dataclass(frozen=True)
class _Shape:
    segments: tuple[str, ...]  # literal text, _ANY or (last only) _TAIL

    @classmethod
    def of(cls, path: str) -> _Shape:
        out: list[str] = []
        for segment in _segments(path):
            variables = _VARIABLE.findall(segment)
            if not variables:
                out.append(segment)
            elif any("." in v for v in variables):  # ``.+``/``.*``: any number of segments
                out.append(_TAIL)
                break
            else:
                out.append(_ANY)
        return cls(tuple(out))

    def fits(self, length: int, literals: dict[int, str | None]) -> bool:
        """Whether a path of ``length`` segments may match, given the segment at each
        position where some shape has a literal (``None`` when it is none of those)."""
        tail = bool(self.segments) and self.segments[-1] == _TAIL
        if length < len(self.segments) if tail else length != len(self.segments):
            return False
        fixed = self.segments[:-1] if tail else self.segments
        return all(
            segment == _ANY or literals.get(index) == segment for index, segment in enumerate(fixed)
        )


def _segments(path: str) -> list[str]:
    """Split on the ``/`` outside ``{...}`` (a variable's pattern may contain ``/``)."""
    out: list[str] = []
    depth = 0
    current: list[str] = []
    for char in path[1:]:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        if char == "/" and depth == 0:
            out.append("".join(current))
            current = []
        else:
            current.append(char)
    out.append("".join(current))
    return out


class ShapeIndex(AbstractResource):
    """Many resources that share the leading ``/{variable}``, tried only where they fit."""

    def __init__(self, canonical: str) -> None:
        super().__init__()
        self._canonical = canonical
        self._resources: list[tuple[Resource, _Shape]] = []
        self._literals: list[set[str]] = []  # per position, every literal some shape has
        self._literal_positions: list[int] = []
        self._candidates: dict[tuple[int | str | None, ...], tuple[Resource, ...]] = {}

    def add_resource(self, path: str, *, name: str | None = None) -> Resource:
        """A new resource for ``path`` in this index (add its routes to it)."""
        if "{" in path:
            resource: Resource = DynamicResource(path, name=name)
        else:
            resource = PlainResource(path, name=name)
        shape = _Shape.of(path)
        for index, segment in enumerate(shape.segments):
            while len(self._literals) <= index:
                self._literals.append(set())
            if segment not in (_ANY, _TAIL):
                self._literals[index].add(segment)
        self._resources.append((resource, shape))
        self._literal_positions = [i for i, known in enumerate(self._literals) if known]
        self._candidates.clear()
        return resource

    def _fitting(self, path: str) -> tuple[Resource, ...]:
        segments = path[1:].split("/")
        count = len(segments)
        # The key: the segment count (capped past the longest shape) and, at each position
        # where some shape has a literal, the segment if it is one of those literals.
        length = min(count, len(self._literals) + 1)
        known: list[str | None] = []
        for index in self._literal_positions:
            segment = segments[index] if index < count else None
            known.append(segment if segment in self._literals[index] else None)
        key = (length, *known)
        found = self._candidates.get(key)
        if found is None:
            literals = dict(zip(self._literal_positions, known, strict=True))
            found = tuple(r for r, shape in self._resources if shape.fits(length, literals))
            self._candidates[key] = found
        return found

    async def resolve(self, request: web.Request) -> tuple[UrlMappingMatchInfo | None, set[str]]:
        allowed: set[str] = set()
        for resource in self._fitting(request.rel_url.path_safe):
            match, methods = await resource.resolve(request)
            if match is not None:
                return match, methods
            allowed |= methods
        return None, allowed

    @property
    def canonical(self) -> str:
        return self._canonical

    def url_for(self, **kwargs: str) -> URL:
        raise NotImplementedError("build URLs from the inner resources")

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("a ShapeIndex cannot be mounted in a sub-application")

    def get_info(self) -> _InfoDict:
        return {"path": self._canonical}

    def raw_match(self, path: str) -> bool:
        return any(resource.raw_match(path) for resource, _ in self._resources)

    def freeze(self) -> None:
        for resource, _ in self._resources:
            resource.freeze()

    def __len__(self) -> int:
        return sum(len(resource) for resource, _ in self._resources)

    def __iter__(self) -> Iterator[AbstractRoute]:
        for resource, _ in self._resources:
            yield from resource
