"""The ``--preload "pkg.mod:func(args)"`` hook, run once per processor."""

import ast
import importlib
from typing import Any, Dict, List, Optional, Tuple


class PreloadSpecError(ValueError):
    pass


def parse_preload(spec: str) -> Tuple[str, str, Optional[List[Any]], Optional[Dict[str, Any]]]:
    """Split a spec into (module, function, args, kwargs); args is None for a bare name."""
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
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise PreloadSpecError(f"Function reference must be a simple name: {expr!r}")
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    except ValueError:
        raise PreloadSpecError(f"Failed to parse arguments as literal values: {expr!r}") from None
    return module, node.func.id, args, kwargs


def execute_preload(spec: str) -> None:
    """Import the module and call the function; raises on any failure."""
    module_name, func_name, args, kwargs = parse_preload(spec)
    module = importlib.import_module(module_name)
    func = getattr(module, func_name)
    if args is None:
        func()
    else:
        func(*args, **kwargs)
