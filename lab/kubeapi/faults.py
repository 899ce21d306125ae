"""Fault injection rules and per-verb request counters."""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    """Answer matching requests with ``status`` (and/or sleep ``delay_seconds`` first), ``count`` times.

    ``count=None`` means forever. ``status=None`` with a delay only slows the request down.
    """

    method: str | None = None
    path_regex: str | None = None
    verb: str | None = None
    status: int | None = None
    message: str = "injected fault"
    delay_seconds: float = 0.0
    count: int | None = None
    hits: int = field(default=0)

    def matches(self, method: str, path: str, verb: str) -> bool:
        """Whether a request matches this rule."""
        if self.method and self.method.upper() != method.upper():
            return False
        if self.verb and self.verb != verb:
            return False
        return not (self.path_regex and not re.search(self.path_regex, path))

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as accepted by ``POST /_fake/faults``."""
        return {
            "match": {"method": self.method, "path_regex": self.path_regex, "verb": self.verb},
            "status": self.status,
            "message": self.message,
            "delay_seconds": self.delay_seconds,
            "count": self.count,
            "hits": self.hits,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Parse ``{"match": {...}, "status": 503, "count": 2, "delay_seconds": 5, "message": "..."}``."""
        match = data.get("match") or {}
        unknown = set(data) - {"match", "status", "message", "delay_seconds", "count"}
        unknown |= set(match) - {"method", "path_regex", "verb"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if match.get("path_regex") is not None:
            re.compile(match["path_regex"])
        return cls(
            method=match.get("method"),
            path_regex=match.get("path_regex"),
            verb=match.get("verb"),
            status=data.get("status"),
            message=data.get("message", "injected fault"),
            delay_seconds=float(data.get("delay_seconds") or 0.0),
            count=data.get("count"),
        )


class Faults:
    """Ordered fault rules; the first matching rule with a remaining count fires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def add(self, fault: Fault | dict[str, Any]) -> Fault:
        """Add a rule (a :class:`Fault` or its dict form)."""
        rule = fault if isinstance(fault, Fault) else Fault.from_dict(fault)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        """Current rules in JSON form."""
        with self._lock:
            return [r.to_dict() for r in self._rules]

    def take(self, method: str, path: str, verb: str) -> Fault | None:
        """Consume one use of the first matching rule."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, verb) and (rule.count is None or rule.count > 0):
                    if rule.count is not None:
                        rule.count -= 1
                    rule.hits += 1
                    return rule
        return None


class Stats:
    """Request counters by verb and by ``verb resource``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_verb: Counter[str] = Counter()
        self.by_resource: Counter[str] = Counter()
        self.by_code: Counter[str] = Counter()

    def record(self, verb: str, resource: str, code: int) -> None:
        """Count one request."""
        with self._lock:
            self.by_verb[verb] += 1
            if resource:
                self.by_resource[f"{verb} {resource}"] += 1
            self.by_code[str(code)] += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"total": n, "by_verb": {...}, "by_resource": {...}, "by_code": {...}}``."""
        with self._lock:
            return {
                "total": sum(self.by_verb.values()),
                "by_verb": dict(self.by_verb),
                "by_resource": dict(self.by_resource),
                "by_code": dict(self.by_code),
            }

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self.by_verb.clear()
            self.by_resource.clear()
            self.by_code.clear()
