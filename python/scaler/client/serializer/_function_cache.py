"""Reuse the cloudpickled bytes of a function while nothing they depend on can have changed.

The client stores a task's function by content (its serialized bytes), so every submission
serializes it again, as upstream does: by value, a function's bytes include its code, defaults and
the globals it references, which may have been rebound since. Serializing costs tens of
microseconds, often more than the rest of a submission.

This cache keeps the bytes of plain functions (``types.FunctionType``) whose dependencies are all
immutable: globals, defaults and keyword defaults that are None, bool, int, float, complex, str or
bytes, or other such functions (looked at a few levels deep); no closure, no attributes, no
annotations. Its fingerprint holds the very objects the bytes were made from (code object, names,
docstring, default and global values, the module attributes cloudpickle records); the cached bytes
are used only while every one of them is still the same object (``is``). Anything else (a global
list, a class, a module, a closure...) is serialized at every submission, as before. Only used
with the default serializer, whose output depends on nothing else.
"""

import sys
import types
import weakref
from typing import Callable, Optional, Tuple

_ATOMS = frozenset((type(None), bool, int, float, complex, str, bytes))
_MODULE_KEYS = ("__package__", "__name__", "__path__", "__file__")  # recorded by cloudpickle
_MISSING = object()
_SELF = object()  # the function refers to itself through a global name
_MAX_DEPTH = 3
_CODE_NAMES_LIMIT = 4096

_payloads: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # function -> (fingerprint, payload)
_code_names: dict = {}  # code object -> names it may read as globals (its own and nested code's)


def _global_names(code: types.CodeType) -> tuple:
    names = _code_names.get(code)
    if names is None:
        found = dict.fromkeys(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found.update(dict.fromkeys(_global_names(const)))
        names = tuple(found)
        if len(_code_names) >= _CODE_NAMES_LIMIT:
            _code_names.clear()
        _code_names[code] = names
    return names


try:
    from cloudpickle import cloudpickle as _cloudpickle_implementation

    _BY_VALUE = _cloudpickle_implementation._PICKLE_BY_VALUE_MODULES  # a set of module names
except Exception:  # another cloudpickle: fingerprints never match, functions are always serialized
    _BY_VALUE = None


def _by_value_modules() -> tuple:
    if _BY_VALUE is None:
        return (object(),)
    return tuple(sorted(_BY_VALUE)) if _BY_VALUE else ()


def fingerprint(fn, depth: int = 0) -> Optional[tuple]:
    """The objects ``fn``'s serialized bytes are made from, or None if they include a mutable one."""
    if type(fn) is not types.FunctionType or depth > _MAX_DEPTH:
        return None
    if fn.__closure__ is not None or fn.__dict__ or fn.__annotations__:
        return None
    # By value or by reference (cloudpickle's choice) depends on the module and on the modules
    # registered to be pickled by value.
    parts = [fn.__code__, fn.__name__, fn.__qualname__, fn.__module__, fn.__doc__, sys.modules.get(fn.__module__),
             _by_value_modules()]
    defaults = fn.__defaults__
    if defaults is not None:
        for value in defaults:
            if type(value) not in _ATOMS:
                return None
    parts.append(defaults)
    kwdefaults = fn.__kwdefaults__
    if kwdefaults:
        for key, value in kwdefaults.items():
            if type(value) not in _ATOMS:
                return None
            parts.append(key)
            parts.append(value)
    module_globals = fn.__globals__
    for key in _MODULE_KEYS:
        parts.append(module_globals.get(key, _MISSING))
    for name in _global_names(fn.__code__):
        value = module_globals.get(name, _MISSING)
        if value is _MISSING or type(value) in _ATOMS:
            parts.append(value)
        elif value is fn:
            parts.append(_SELF)
        elif type(value) is types.FunctionType:
            inner = fingerprint(value, depth + 1)
            if inner is None:
                return None
            parts.append(inner)
        else:
            return None
    return tuple(parts)


def _same(a: tuple, b: tuple) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is not y and not (type(x) is tuple and type(y) is tuple and _same(x, y)):
            return False
    return True


def serialize_function(fn: Callable, serialize: Callable) -> Tuple[bytes, bool]:
    """(``serialize(fn)``, whether it came from the cache)."""
    try:
        mark = fingerprint(fn)
    except Exception:  # an unusual function object: just serialize it
        mark = None
    if mark is None:
        return serialize(fn), False
    cached = _payloads.get(fn)
    if cached is not None and _same(cached[0], mark):
        return cached[1], True
    payload = serialize(fn)
    _payloads[fn] = (mark, payload)
    return payload, False
