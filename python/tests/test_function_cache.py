"""The client reuses a function's serialized bytes only while they cannot have changed."""

import sys

import cloudpickle
import pytest

from scaler.client.serializer._function_cache import fingerprint, serialize_function

LIMIT = 3
TABLE = [1, 2]


def plain(x):
    return x + LIMIT


def helper(x):
    return x * 2


def calls_helper(x, scale=2.5, *, name="n"):
    return helper(x) * scale


def uses_list(x):
    return TABLE[x]


def recursive(n):
    return 1 if n <= 1 else n * recursive(n - 1)


@pytest.fixture(autouse=True)
def by_value():
    """Functions of this module are pickled by value, as those of a script (``__main__``) are."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def dumps(fn):
    return cloudpickle.dumps(fn, protocol=5)


def check(fn) -> bool:
    """Serialize twice; the cached bytes must equal a fresh serialization. True if cached."""
    first, _ = serialize_function(fn, dumps)
    payload, cached = serialize_function(fn, dumps)
    assert payload == dumps(fn) == first
    return cached


def test_cached_while_unchanged():
    assert check(plain)
    assert check(calls_helper)
    assert check(recursive)
    assert check(lambda x: x)


def test_not_cached_with_mutable_dependencies():
    assert fingerprint(uses_list) is None
    assert not check(uses_list)
    counter = [0]

    def closure(x):
        return counter[0] + x

    assert fingerprint(closure) is None
    assert fingerprint(len) is None  # not a Python function: serialized (by reference) each time


def test_changes_are_seen():
    global LIMIT
    old = serialize_function(plain, dumps)[0]
    try:
        LIMIT = 4
        new, cached = serialize_function(plain, dumps)
        assert not cached and new != old and new == dumps(plain)
    finally:
        LIMIT = 3
    assert serialize_function(plain, dumps)[0] == dumps(plain)

    check(calls_helper)
    calls_helper.__defaults__ = (3.5,)
    payload, cached = serialize_function(calls_helper, dumps)
    assert not cached and payload == dumps(calls_helper)
    calls_helper.__kwdefaults__["name"] = "m"
    payload, cached = serialize_function(calls_helper, dumps)
    assert not cached and payload == dumps(calls_helper)

    global helper
    original = helper
    try:
        def helper(x):  # noqa: F811 - rebinding the global the cached function calls
            return x * 3

        payload, cached = serialize_function(calls_helper, dumps)
        assert not cached and payload == dumps(calls_helper)
    finally:
        helper = original

    def f(x):
        return x

    check(f)
    f.__code__ = (lambda x: x + 1).__code__
    payload, cached = serialize_function(f, dumps)
    assert not cached and payload == dumps(f)
    f.attribute = 1
    assert fingerprint(f) is None


def test_by_value_registration_is_seen():
    check(plain)
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    try:
        payload, cached = serialize_function(plain, dumps)
        assert not cached and payload == dumps(plain)  # now by reference
    finally:
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
