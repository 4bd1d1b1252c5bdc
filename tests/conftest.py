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


@pytest.fixture
def written_before_cpu_time():
    """Turn a killed run's files into what a version before `cpu_time` was kept left: its metrics.csv without the
    column, its checkpoint's meta without the key (runs of a grid part-way must still resume). Returns the old
    columns."""
    import csv
    import json

    from postbc.io.runs import read_metrics

    def rewrite(run_dir, checkpoint_meta):
        rows = read_metrics(run_dir)
        old_columns = [k for k in rows[0] if k != "cpu_time"]
        with open(run_dir / "metrics.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=old_columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        record = json.loads(checkpoint_meta.read_text())
        del record["meta"]["cpu_time"]
        checkpoint_meta.write_text(json.dumps(record))
        return old_columns

    return rewrite


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
