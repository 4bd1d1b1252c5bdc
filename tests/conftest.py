"""Suite-wide test settings."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; MuJoCo reads it at its first import

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The tests use small networks: one thread is fastest, and on a busy 2-core machine a second
    thread can make each op many times slower (it waits for the descheduled other thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Under CI (.ci/run sets POSTBC_REQUIRE_ALL_TESTS=1) a skipped test is a failure: the simulator and Ray
# tests skip themselves when their import fails, and a broken import must not turn CI green by vanishing.
REQUIRE_ALL = "POSTBC_REQUIRE_ALL_TESTS"


def _fail_skips(report, what: str) -> None:
    import os

    if os.environ.get(REQUIRE_ALL) == "1" and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{what} was skipped under {REQUIRE_ALL}=1 (CI runs every test): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skips(outcome.get_result(), f"test {item.nodeid}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skips(outcome.get_result(), f"module {collector.nodeid}")
