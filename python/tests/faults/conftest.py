"""Fixtures of the fault-injection suite (harness.py has the helpers; docs/reliability.md the promises).

``stack``: a harness.Stack whose logs go to the test's tmp dir; on teardown every process it started
is stopped, and the test fails if any of them (or their children) survives. When the test failed,
the tail of each role's log is printed.
"""

import pytest

from .harness import Stack


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "faults_rep_" + report.when, report)


@pytest.fixture
def stack(scaler_bin, tmp_path, request):
    s = Stack(str(tmp_path / "logs"), binary=scaler_bin)
    try:
        yield s
    finally:
        rep = getattr(request.node, "faults_rep_call", None)
        if rep is not None and rep.failed:
            print(f"\n==== logs of {request.node.name} ({s.log_dir})\n{s.logs()}")
        s.close()
