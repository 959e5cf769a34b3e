"""What several commands share: the error boundary, option types, and turning flags into a configuration."""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from fgvctune.errors import FgvctuneError

# Adapter options (e.g. `--level family`) are declared by each adapter, so these commands take them as extra args.
WITH_ADAPTER_OPTIONS = {"allow_extra_args": True, "ignore_unknown_options": True}

ConfigOpt = Annotated[
    Optional[Path], typer.Option("--config", "-c", help="YAML file of config keys; flags given override it.")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show MindSpore's own messages and warnings.")]


def fail(message: str, hint: str = "", code: int = 1):
    line = typer.style("error: ", fg="red", bold=True) + message + (f" ({hint})" if hint else "")
    typer.echo(line, err=True)
    raise typer.Exit(code)


def handles_errors(command):
    """Turn the library's errors into one line and an exit code; anything else is a bug."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except FgvctuneError as exc:
            fail(exc.message, exc.hint, exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", code=130)

    return wrapper


def adapter_options(ctx: typer.Context, adapter: str) -> dict:
    from fgvctune.data import registry

    return registry.parse_options(registry.get(adapter), ctx.args)


def verbosity(verbose: bool) -> None:
    logging.getLogger("fgvctune").setLevel(logging.INFO if verbose else logging.WARNING)


def config_flags(command):
    """Add every TrainConfig key as a flag (`--image-resize`, `--pretrained/--no-pretrained`, ...).

    Flags default to None, meaning "not given", so they override --config only when typed; the
    command receives them as one `options` dict.
    """
    import inspect

    from fgvctune.config import FIELDS

    added, annotations = [], {}
    for name, f in FIELDS.items():
        if name == "adapter_options":
            continue  # adapter options are the adapter's own flags, given after the others
        flag = "--" + name.replace("_", "-")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        kind = type(default)
        extra = {"--adapter": ["-a"], "--data-dir": ["-d"]}.get(flag, [])
        panel = f.metadata["panel"]
        if kind is bool:
            declared = [f"{flag}/--no-{flag[2:]}"]
        else:
            declared = [flag, *extra]
        if name == "lr_mult":
            kind = list[str]
        elif kind is list:
            kind = tuple[float, float]
        default_text = None if kind is bool or default in ("", [], {}) else str(default)
        option = typer.Option(
            *declared, help=f.metadata["help"], rich_help_panel=panel, show_default=default_text or False
        )
        annotations[name] = Annotated[Optional[kind], option]
        added.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotations[name])
        )

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        options = {name: kwargs.pop(name) for name in list(kwargs) if name in FIELDS}
        return command(*args, options=options, **kwargs)

    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]
    wrapper.__signature__ = inspect.Signature(own + added)
    wrapper.__annotations__ = {k: v for k, v in command.__annotations__.items() if k != "options"} | annotations
    return wrapper


def resolved_config(ctx: typer.Context, config: Optional[Path], options: dict):
    """Defaults < --config < flags given, with adapter options (extra args) parsed for the chosen adapter."""
    from fgvctune.config import resolve
    from fgvctune.data import registry

    resolved = resolve(config, **options)
    if ctx.args:
        if not resolved.adapter:
            fail(f"unexpected arguments {' '.join(ctx.args)}", "adapter options need --adapter", 2)
        extra = registry.parse_options(registry.get(resolved.adapter), ctx.args)
        resolved.adapter_options = {**resolved.adapter_options, **extra}
    return resolved
