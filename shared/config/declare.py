"""How a setting is declared, once: a dataclass field whose metadata holds its env name, default, parser and help.

    canary_percent: int = setting("MLOPS_CANARY_PERCENT", "10", integer(1, 50), "Share of live traffic ...")

A group is a frozen dataclass of such fields (one concern, one README table); a root dataclass holds groups
(`group(...)`) and may declare settings of its own. Everything else comes from the declarations: the list of
settings (`declared`), reading them (`load`: every error names the setting), the README's tables (`markdown`).
Defaults are written as they would be in the environment, so a default goes through the same parser as a
user's value and the README shows what one would type. Standard library only: config is read at cold start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

_SETTING = "mlops.setting"
_GROUP = "mlops.group"


class ConfigError(ValueError):
    """A setting is missing or has a value we cannot use."""


@dataclass(frozen=True)
class Parser:
    """Turns a setting's text into its value, or raises ConfigError naming the setting."""

    allowed: str  # what the README says the setting accepts
    convert: Callable[[str, str], Any]  # (setting name, text) -> value

    def __call__(self, name: str, text: str) -> Any:
        return self.convert(name, text)


# value as parsed, every parsed value by setting name -> the value the settings object holds
Resolver = Callable[[Any, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    parse: Parser
    help: str
    # For what depends on other settings ("empty: a default by task", "must be declared in the schema").
    resolve: Resolver | None = None
    group: str = ""  # the title of its group, filled in by `declared`
    attribute: str = ""  # where the settings object holds it, e.g. "release.canary_percent"


@dataclass(frozen=True)
class _Group:
    cls: type
    when: Callable[[Mapping[str, Any]], bool] | None  # present only if true of the parsed values
    check: Callable[[Mapping[str, str], Mapping[str, str]], None] | None  # (raw, defaults), before parsing


def setting(name: str, default: str, parse: Parser, help: str, *, resolve: Resolver | None = None) -> Any:
    """A field holding one `MLOPS_*` setting (typed `Any` so that `x: int = setting(...)` type-checks)."""
    return field(metadata={_SETTING: Setting(name, default, parse, help, resolve)})


def group(
    cls: type,
    *,
    when: Callable[[Mapping[str, Any]], bool] | None = None,
    check: Callable[[Mapping[str, str], Mapping[str, str]], None] | None = None,
) -> Any:
    """A field holding a group of settings; with `when`, None unless `when(parsed values)`; `check(raw,
    defaults)` looks at the group's raw values first, to report every problem in one error."""
    return field(metadata={_GROUP: _Group(cls, when, check)})


@functools.cache
def declared(cls: type) -> tuple[Setting, ...]:
    """Every setting of `cls` and of its groups, in declaration order, with its group and attribute path."""
    found: list[Setting] = []
    for f in fields(cls):
        if _SETTING in f.metadata:
            found.append(replace(f.metadata[_SETTING], group=cls.title, attribute=f.name))
        elif _GROUP in f.metadata:
            found += [
                replace(s, attribute=f"{f.name}.{s.attribute}") for s in declared(f.metadata[_GROUP].cls)
            ]
    names = [s.name for s in found]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TypeError(f"{cls.__name__} declares {', '.join(duplicates)} more than once")
    return tuple(found)


def raw_values(cls: type, env: Mapping[str, str]) -> dict[str, str]:
    """The text of each of `cls`'s settings: from `env` unless unset or empty, else the declared default."""
    return {s.name: env.get(s.name, "") or s.default for s in declared(cls)}


def load(cls: type, raw: Mapping[str, str], /, **extra: Any) -> Any:
    """`cls` from raw values (see `raw_values`): every setting parsed (failing on the first bad one, in
    declaration order), then resolved against the others, then assembled; `extra` sets non-setting fields."""
    defaults = {s.name: s.default for s in declared(cls)}
    parsed: dict[str, Any] = {}
    present = _parse(cls, raw, defaults, parsed)
    # Resolvers read the values as parsed, never another resolver's output: the order they run in is moot.
    resolved = dict(parsed)
    for s in declared(cls):
        if s.resolve is not None and s.name in parsed:
            resolved[s.name] = s.resolve(parsed[s.name], parsed)
    return _build(cls, resolved, present, extra)


def _parse(
    cls: type, raw: Mapping[str, str], defaults: Mapping[str, str], parsed: dict[str, Any]
) -> set[type]:
    present = {cls}
    for f in fields(cls):
        if _SETTING in f.metadata:
            s: Setting = f.metadata[_SETTING]
            parsed[s.name] = s.parse(s.name, raw[s.name])
        elif _GROUP in f.metadata:
            g: _Group = f.metadata[_GROUP]
            if g.when is None or g.when(parsed):
                if g.check is not None:
                    g.check(raw, defaults)
                present |= _parse(g.cls, raw, defaults, parsed)
    return present


def _build(cls: type, values: Mapping[str, Any], present: set[type], extra: Mapping[str, Any]) -> Any:
    kwargs = dict(extra)
    for f in fields(cls):
        if _SETTING in f.metadata:
            kwargs[f.name] = values[f.metadata[_SETTING].name]
        elif _GROUP in f.metadata:
            member = f.metadata[_GROUP].cls
            kwargs[f.name] = _build(member, values, present, {}) if member in present else None
    return cls(**kwargs)


def markdown(cls: type) -> str:
    """The README's configuration reference: one table per group, in declaration order."""
    out: list[str] = []
    for title in dict.fromkeys(s.group for s in declared(cls)):
        out += [f"### {title}", "", "| setting | default | values | meaning |", "|---|---|---|---|"]
        out += [
            f"| `{s.name}` | {_shown(s.default)} | {s.parse.allowed} | {s.help} |"
            for s in declared(cls)
            if s.group == title
        ]
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def _shown(default: str) -> str:
    if not default:
        return "(empty)"
    return f"`{default[:37]}…`" if len(default) > 60 else f"`{default}`"


# ---- parsers: each one's `allowed` is what the README says


def _number(name: str, text: str, kind: type, low: float | None, high: float | None) -> Any:
    text = text.strip()
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(
            f"{name} must be a{'n integer' if kind is int else ' number'}, not {text!r}"
        ) from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{name}={text} is out of range [{low}, {high}]")
    return value


def _range(low: float | None, high: float | None) -> str:
    def shown(bound: float) -> str:
        return str(bound) if isinstance(bound, int) else f"{bound:g}"

    if low is not None and high is not None:
        return f" {shown(low)} to {shown(high)}"
    if low is not None:
        return f" ≥ {shown(low)}"
    return f" ≤ {shown(high)}" if high is not None else ""


def integer(low: int | None = None, high: int | None = None) -> Parser:
    return Parser(f"integer{_range(low, high)}", lambda name, text: _number(name, text, int, low, high))


def number(low: float | None = None, high: float | None = None) -> Parser:
    return Parser(f"number{_range(low, high)}", lambda name, text: _number(name, text, float, low, high))


def number_or_off(low: float | None = None) -> Parser:
    """A number, or `off` (None): the feature it tunes is switched off."""

    def convert(name: str, text: str) -> float | None:
        return None if text.strip().lower() == "off" else _number(name, text, float, low, None)

    return Parser(f"number{_range(low, None)} or `off`", convert)


def numbers(low: float | None = None) -> Parser:
    """Comma-separated numbers, each checked as its own value of the setting."""

    def convert(name: str, text: str) -> tuple[float, ...]:
        return tuple(_number(name, part, float, low, None) for part in text.split(","))

    return Parser(f"numbers{_range(low, None)}, comma-separated", convert)


def choice(*options: str) -> Parser:
    """One of `options`, in any case."""
    said = f"{options[0]!r} or {options[1]!r}" if len(options) == 2 else f"one of {sorted(options)}"

    def convert(name: str, text: str) -> str:
        if text.lower() not in options:
            raise ConfigError(f"{name} must be {said}, not {text!r}")
        return text.lower()

    return Parser(", ".join(f"`{option}`" for option in options), convert)


def _boolean(name: str, text: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {text!r}")


def json_object(name: str, text: str) -> dict:
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{name} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object")
    return value


TEXT = Parser("text", lambda name, text: text)
STRIPPED = Parser("text", lambda name, text: text.strip())
URL = Parser("URL", lambda name, text: text.rstrip("/"))
PATH = Parser("path", lambda name, text: Path(text).resolve())
COLUMNS = Parser(
    "column names, comma-separated", lambda name, text: tuple(c.strip() for c in text.split(",") if c.strip())
)
BOOLEAN = Parser("`true`, `false`", _boolean)
JSON_OBJECT = Parser("JSON object", json_object)
