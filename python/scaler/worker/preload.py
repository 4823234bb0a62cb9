"""The ``--preload "pkg.mod:func(args)"`` hook, run once per processor (Scaler 1.12.5's interface)."""

import ast
import importlib
import logging
import os
import traceback
from typing import Any, Dict, List, Optional, Tuple


class PreloadSpecError(Exception):
    """A preload spec that cannot be parsed, found or called (1.12.5's type and messages)."""


def parse_preload(spec: str) -> Tuple[str, str, Optional[List[Any]], Optional[Dict[str, Any]]]:
    """Split a spec into (module, function, args, kwargs); args and kwargs are None for a bare name."""
    if ":" not in spec:
        raise PreloadSpecError("preload must be in 'module.sub:func(...)' format")
    module, expr = spec.split(":", 1)
    module = module.strip()
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise PreloadSpecError(f"Failed to parse {expr!r} as an attribute name or function call.") from None
    if isinstance(node, ast.Name):
        return module, node.id, None, None
    if not isinstance(node, ast.Call):
        raise PreloadSpecError(f"Failed to parse {expr!r} as an attribute name or function call.")
    if not isinstance(node.func, ast.Name):
        raise PreloadSpecError(f"Function reference must be a simple name: {expr!r}")
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    except ValueError:
        raise PreloadSpecError(f"Failed to parse arguments as literal values: {expr!r}") from None
    return module, node.func.id, args, kwargs


# 1.12.5's private name, which user tests import.
_parse_preload_spec = parse_preload


def execute_preload(spec: str) -> None:
    """Import the module and call the function; raises PreloadSpecError (or the ImportError) on failure."""
    module_name, func_name, args, kwargs = parse_preload(spec)
    # The INFO line of 1.12.5, which scripts grep for.
    logging.info("preloading: %s:%s with args=%s kwargs=%s", module_name, func_name, args, kwargs)
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        if module_name.endswith(".py") and os.path.exists(module_name):
            suggestion = module_name[: -len(".py")]
            raise PreloadSpecError(f"Failed to find module. Did you mean '{suggestion}:{func_name}'?") from None
        raise
    if not hasattr(module, func_name):
        message = f"Failed to find attribute {func_name!r} in {module_name!r}."
        logging.error(message)
        raise PreloadSpecError(message)
    target = getattr(module, func_name)
    if not callable(target):
        raise PreloadSpecError("Preload target must be callable.")
    try:
        if args is None:
            target()
        else:
            target(*args, **(kwargs or {}))
    except TypeError as e:
        # the wrong arguments for the function: "TypeError: f() takes 0 positional arguments ..."
        raise PreloadSpecError("".join(traceback.format_exception_only(TypeError, e)).strip()) from e
