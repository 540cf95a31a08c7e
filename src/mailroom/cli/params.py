"""Plain command-line values converted without pydantic (Typer's own path for the rest).

Typer converts every parameter's value through a pydantic TypeAdapter, built on first use;
importing pydantic and building the adapters costs a command ~0.1 s at start, more than
Typer itself. Nearly all of Mailroom's parameters are plain: a string, a whole number
(perhaps with a minimum), a flag, a list of strings. For those, `PlainValues` gives the
value Typer would (`int("42")` for "42", the string itself, the list of strings) and hands
everything else (a bad number, a path, a choice, a value out of range) to Typer's own
conversion, so results and error messages stay Typer's. tests/interfaces/cli/test_startup.py checks
both against Typer's conversion for every parameter of every command.
"""

from __future__ import annotations

from typing import Any

NOT_PLAIN = object()  # "not a plain value": Typer's own conversion decides


def plain_value(descriptor: Any, value: Any) -> Any:
    """`value` converted as Typer would for a plain parameter, or `NOT_PLAIN`."""
    if descriptor.is_file or descriptor.is_path or descriptor.is_choice or descriptor.is_tuple:
        return NOT_PLAIN
    annotation = descriptor.annotation
    if descriptor.is_list:
        args: tuple[Any, ...] = getattr(annotation, "__args__", ())
        if not isinstance(value, list | tuple) or len(args) != 1:
            return NOT_PLAIN
        items = [_scalar(args[0], descriptor, item) for item in value]
        return NOT_PLAIN if any(item is NOT_PLAIN for item in items) else items
    return _scalar(annotation, descriptor, value)


def _scalar(annotation: Any, descriptor: Any, value: Any) -> Any:
    if annotation is str:
        return value if isinstance(value, str) else NOT_PLAIN
    if annotation is int:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            return NOT_PLAIN
        info = descriptor.parameter_info
        if (info.min is not None and number < info.min) or (
            info.max is not None and number > info.max
        ):
            return NOT_PLAIN
        return number
    return NOT_PLAIN


class PlainValues:
    """Stands in for a Typer parameter's runtime conversion (`_runtime_param`)."""

    def __init__(self) -> None:
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        many = param.multiple or param.nargs == -1
        if value is None:  # as Typer's RuntimeParam.coerce
            return () if many else None
        if not (many and isinstance(value, str)):
            plain = plain_value(param.type_descriptor, value)
            if plain is not NOT_PLAIN:
                return plain
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(param.type_descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


def use_plain_values(command: Any, *, subcommands: bool = True) -> None:
    """Give every Typer parameter of `command` (and of its sub-commands) a `PlainValues`."""
    import typer

    # --help is made on first use; make it now so that it gets one too.
    help_option = command.get_help_option(typer.Context(command))
    for param in [*command.params, help_option]:
        if getattr(param, "type_descriptor", None) and getattr(param, "_runtime_param", 0) is None:
            param._runtime_param = PlainValues()
    if subcommands:
        for sub in getattr(command, "commands", {}).values():
            use_plain_values(sub)
