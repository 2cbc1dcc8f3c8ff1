"""Dict keys given twice in a gin file, found before gin builds the dict and silently keeps the last one.

Why: `Sweep.variants = {'a': {...}, 'a': {...}}` is a sweep file that says two things; gin's parser turns the
items into a dict, so the first variant would vanish without a word. This runs gin's own parser over the text
(nothing is imported or executed, no configurable needs to exist) and remembers each dict literal's items.
"""

from __future__ import annotations

from typing import Any

from gin import config_parser

from t5explore.config import ConfigError


class _KeyRecordingParser(config_parser.ConfigParser):
    """gin's own parser (nothing is imported or executed) that remembers every dict literal's keys, in order:
    gin builds a dict from its items, so a key given twice silently keeps the last value."""

    def __init__(self, text: str, delegate: Any):
        self.duplicates: list[tuple[Any, Any, Any]] = []  # (key, first value, second value)
        self._items: list[list[tuple[Any, Any]]] = []
        super().__init__(text, delegate)

    def _maybe_parse_container(self):
        is_dict = self._current_token.string == "{"
        if is_dict:
            self._items.append([])
        try:
            return super()._maybe_parse_container()
        finally:
            if is_dict:
                seen: dict[Any, Any] = {}
                for key, value in self._items.pop():
                    if repr(key) in seen:
                        self.duplicates.append((key, seen[repr(key)], value))
                    seen[repr(key)] = value

    def _parse_dict_item(self):
        key, value = super()._parse_dict_item()
        self._items[-1].append((key, value))
        return key, value


class _Delegate(config_parser.ParserDelegate):
    """Leaves references and macros as text: the duplicate check needs no configurable to exist."""

    def configurable_reference(self, scoped_name, evaluate):
        return f"@{scoped_name}{'()' if evaluate else ''}"

    def macro(self, macro_name):
        return f"%{macro_name}"


def refuse_duplicate_keys(text: str, where: str) -> None:
    """ConfigError naming the binding and both values of the first dict key given twice in `text`."""
    try:
        parser = _KeyRecordingParser(text, _Delegate())
        for statement in parser:
            if parser.duplicates:
                key, first, second = parser.duplicates[0]
                selector = getattr(statement, "selector", None) or "a binding"
                arg = getattr(statement, "arg_name", "")
                binding = f"{selector}.{arg}" if arg else selector
                raise ConfigError(
                    f"{binding} in {where} (line {statement.location.line_num}) gives the key {key!r} twice: "
                    f"{first!r} and {second!r}; gin would silently keep only the second. Rename or remove one"
                )
    except SyntaxError:
        return  # gin's own parse (load_sweep) reports a syntax error with its location
