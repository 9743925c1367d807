"""Field checks for the section validators of an experiment config.

Each section of a config (`tfnas.config_lib`) is validated by the module that owns it, e.g.
`tfnas.trainer.validate_config` for ``train``; `tfnas.config_lib.validate_config` calls
them all. A validator wraps its section in a `Section` and checks field by field::

    fields = config_checks.Section(section, "export", ("root", "top_k", ...))  # names
    fields.string("root", allow_empty=False)                                      # ...
    fields.integer("top_k", 1)

`Section` first rejects a missing section, a missing field and an unknown field (a typo
in a config file). Every check returns the value and raises a ValueError naming the field
(``config.export.top_k``), the value received, what is expected and how to fix it.

This module imports nothing but the standard library, so the modules that own the
sections import it at module level, and `tfnas.config_lib` (which must load without
TensorFlow) can too. The helpers live here rather than in `tfnas.config_lib` so that the
dependency goes one way: config_lib imports the section validators (lazily), they import
these checks, and no library module depends on the config defaults.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Section", "fail", "is_int", "is_number"]


def fail(name: str, value: Any, expected: str, fix: str | None = None) -> ValueError:
    """The ValueError for ``config.<name>=<value>``: what was received, expected, the fix.

    Args:
      name: the dotted field name without ``config.``, e.g. ``"train.batch_size"``.
      value: the value received.
      expected: what a valid value is, e.g. ``"an integer >= 1"``.
      fix: how to fix it; by default ``--config.<name>=VALUE`` or the config file.
    """
    fix = fix or f"fix it with --config.{name}=VALUE or in the config file"
    return ValueError(f"config.{name}={value!r} is invalid: expected {expected}; {fix}")


def is_int(value: Any) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number (int or float, Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _has_fields(node: Any) -> bool:
    # ConfigDict is not a collections.abc.Mapping, but it has keys() and item access.
    return isinstance(node, Mapping) or (hasattr(node, "keys") and hasattr(node, "__getitem__"))


class Section:
    """A config section under validation: its fields, checked by name.

    Args:
      section: the section (a ConfigDict or dict), e.g. ``config.train``; for the top level,
        the config itself with ``path=""``.
      path: its dotted name without ``config.``, e.g. ``"train"`` or ``"train.monitor"``.
      fields: every field the section has (its schema); a missing or an extra field is an
        error.
      owner: where the fields are documented, named in the errors (e.g.
        ``"tfnas.trainer.validate_config"``).
      renamed: ``{old name: new name}`` of renamed fields, so that an old config file gets
        told the new name.

    Raises:
      ValueError: the section is missing or not a section, a field is missing, or a field
        is not one of ``fields``.
    """

    def __init__(
        self,
        section: Any,
        path: str,
        fields: Iterable[str],
        *,
        owner: str = "tfnas.config_lib",
        renamed: Mapping[str, str] | None = None,
    ):
        self.section = section
        self.path = path
        self.fields = tuple(fields)
        self.owner = owner
        where = f"config.{path}" if path else "config"
        if not _has_fields(section):
            found = "missing" if section is None else f"a {type(section).__name__}"
            raise ValueError(
                f"{where} is {found}: expected a section with the fields "
                f"{', '.join(self.fields)} (see {owner}); build configs with "
                "tfnas.config_lib.base_config() (the configs/ files do)"
            )
        keys = list(section.keys())
        for field in self.fields:
            if field not in keys:
                raise ValueError(
                    f"{self.name(field)} is missing: expected every field of the schema (see "
                    f"{owner}); build configs with tfnas.config_lib.base_config() (the "
                    "configs/ files do)"
                )
        for key in keys:
            if key not in self.fields:
                raise ValueError(self._unknown(key, renamed or {}))

    def name(self, field: str) -> str:
        """``config.<path>.<field>``."""
        return f"config.{self._dotted(field)}"

    def _dotted(self, field: str) -> str:
        return f"{self.path}.{field}" if self.path else field

    def _unknown(self, key: str, renamed: Mapping[str, str]) -> str:
        if key in renamed:
            hint = f"it was renamed {self.name(renamed[key])}: set that instead"
        else:
            hint = "remove it from the config file or fix its spelling"
            close = difflib.get_close_matches(str(key), self.fields, n=1)
            if close:
                hint = f"did you mean {self.name(close[0])}? Otherwise {hint}"
        where = f"config.{self.path}" if self.path else "config"
        return (
            f"{self.name(key)} is not a field of the config: {where} has only "
            f"{', '.join(self.fields)} (see {self.owner}); {hint}"
        )

    # -- reading and failing ----------------------------------------------------------

    def __getitem__(self, field: str) -> Any:
        return self.section[field]

    def fail(self, field: str, value: Any, expected: str, fix: str | None = None) -> ValueError:
        """The ValueError for this section's ``field`` (see `fail`)."""
        return fail(self._dotted(field), value, expected, fix)

    # -- checks: each returns the value -----------------------------------------------

    def integer(
        self, field: str, minimum: int, maximum: int | None = None, fix: str | None = None
    ) -> int:
        """An integer >= ``minimum`` (and <= ``maximum`` when given)."""
        value = self[field]
        if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
            expected = (
                f"an integer >= {minimum}"
                if maximum is None
                else f"an integer in {minimum}..{maximum}"
            )
            raise self.fail(field, value, expected, fix)
        return int(value)

    def number(
        self,
        field: str,
        low: float,
        high: float = float("inf"),
        *,
        low_open: bool = False,
        high_open: bool = False,
    ) -> float:
        """A real number in the interval from ``low`` to ``high`` (closed unless ``*_open``)."""
        value = self[field]
        ok = is_number(value) and (value > low if low_open else value >= low)
        ok = ok and (value < high if high_open else value <= high)
        if not ok:
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise self.fail(field, value, f"a number in {interval}")
        return float(value)

    def choice(self, field: str, choices: Iterable[Any], fix: str | None = None) -> Any:
        """One of ``choices`` (a registry's names)."""
        choices = tuple(choices)
        value = self[field]
        # `in` on a tuple compares with ==, and True == 1: keep bools out of int choices.
        if isinstance(value, bool) or value not in choices:
            raise self.fail(field, value, f"one of {', '.join(repr(c) for c in choices)}", fix)
        return value

    def boolean(self, field: str) -> bool:
        """True or False."""
        value = self[field]
        if not isinstance(value, bool):
            raise self.fail(field, value, "True or False")
        return value

    def string(self, field: str, allow_empty: bool = True, fix: str | None = None) -> str:
        """A string (non-empty unless ``allow_empty``)."""
        value = self[field]
        if not isinstance(value, str) or (not allow_empty and not value):
            expected = "a string" if allow_empty else "a non-empty string"
            raise self.fail(field, value, expected, fix)
        return value
