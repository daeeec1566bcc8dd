"""The synthetic data's kinds, options and ``synth:`` specs (what :mod:`ganzoo.synth`'s
renderer, writer and training stream share; re-exported by the package)."""

from __future__ import annotations

from typing import Any, Sequence

from ganzoo.errors import DatasetError

KINDS = ("pinknoise", "primitives", "primitives-s", "primitives-ps")
COLORS = ("per-channel", "correlated")        # values of the color option, default first
SHAPES = ("line", "circle", "ellipse", "rect", "triangle", "polygon")
DEFAULT_SHAPES = SHAPES[:4]                     # the paper's shapes
# Which kinds take which option: colour applies where there is pink noise, shapes where there are primitives.
OPTION_KINDS = {"color": ("pinknoise", "primitives-ps"), "shapes": ("primitives", "primitives-s", "primitives-ps")}
# Bump whenever any kind's pixels change for the same (kind, seed, i): it is hashed into the
# definition of training streams, so a run never resumes on other images than it started with.
GENERATOR_VERSION = "ganzoo.synth/1"
SPEC_PREFIX = "synth:"


def check_kind(kind: str) -> None:
    """Raises :class:`DatasetError` naming the kinds when ``kind`` is not one of them."""
    if kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DatasetError(f"unknown synthetic data kind {kind!r}; use one of {', '.join(KINDS)}.{hint}")


def check_options(kind: str, color: str | None = None, shapes: str | Sequence[str] | None = None) -> dict[str, Any]:
    """Validates a kind's options (None: not given) and returns them in canonical form.

    Args:
        kind: one of :data:`KINDS`.
        color: ``"per-channel"`` or ``"correlated"`` (pinknoise, primitives-ps only).
        shapes: shape types, a sequence or one comma-separated string, from :data:`SHAPES`
            (primitives, primitives-s, primitives-ps only); order and repeats do not matter.

    Returns:
        Only the options that differ from the defaults: ``{"color": str, "shapes": [str, …]}``
        (shapes in :data:`SHAPES` order), ``{}`` for the paper's images. Equal images give equal
        dicts, which is what training streams hash.

    Raises:
        DatasetError: an unknown kind, an option the kind does not have, or a bad value.
    """
    check_kind(kind)
    given = {name: value for name, value in (("color", color), ("shapes", shapes)) if value is not None}
    for name in given:
        if kind not in OPTION_KINDS[name]:
            having = ", ".join(OPTION_KINDS[name])
            raise DatasetError(f"synthetic {kind} has no option {name!r} (only {having} have it)")
    options: dict[str, Any] = {}
    if color is not None:
        if color not in COLORS:
            raise DatasetError(f"synthetic data: color {color!r}; use one of {', '.join(COLORS)}")
        if color != COLORS[0]:
            options["color"] = color
    if shapes is not None:
        names = [name.strip() for name in (shapes.split(",") if isinstance(shapes, str) else shapes)]
        unknown = [name for name in names if name not in SHAPES]
        if unknown or not names:
            raise DatasetError(f"synthetic data: shapes {','.join(names)!r}; use one or more of {', '.join(SHAPES)}")
        canonical = [name for name in SHAPES if name in names]
        if tuple(canonical) != DEFAULT_SHAPES:
            options["shapes"] = canonical
    return options


def parse_spec(spec: str) -> tuple[str, int, dict[str, Any]]:
    """Splits ``"synth:KIND[:SEED][?NAME=VALUE[&NAME=VALUE]]"`` into ``(kind, seed, options)``.

    The seed is 0 by default; ``options`` is :func:`check_options`'s canonical dict, e.g.
    ``parse_spec("synth:pinknoise:2?color=correlated") == ("pinknoise", 2, {"color": "correlated"})``.

    Raises:
        DatasetError: not of that form, an unknown kind, a seed that is not an integer >= 0, or
            an unknown, repeated or bad option.
    """
    body, has_options, query = spec.partition("?")
    parts = body.split(":")
    usage = f"use synth:KIND[:SEED][?color=…&shapes=…] with KIND one of {', '.join(KINDS)}"
    if parts[0] + ":" != SPEC_PREFIX or len(parts) not in (2, 3):
        raise DatasetError(f"{spec!r}: not a synthetic data spec; {usage}")
    if parts[1] not in KINDS:
        raise DatasetError(f"{spec!r}: unknown synthetic data kind {parts[1]!r}; {usage}")
    if len(parts) == 3 and not parts[2].isdecimal():
        raise DatasetError(f"{spec!r}: the seed must be an integer >= 0; {usage}")
    kind, seed = parts[1], int(parts[2]) if len(parts) == 3 else 0
    given: dict[str, str] = {}
    for item in query.split("&") if has_options else ():
        name, has_value, value = item.partition("=")
        if name not in OPTION_KINDS or not has_value or name in given:
            problem = "repeated" if name in given else "not NAME=VALUE with NAME color or shapes"
            raise DatasetError(f"{spec!r}: option {item!r} is {problem}; {usage}")
        given[name] = value
    try:
        return kind, seed, check_options(kind, **given)
    except DatasetError as exc:
        raise DatasetError(f"{spec!r}: {exc}") from None
