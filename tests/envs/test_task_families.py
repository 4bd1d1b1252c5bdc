import logging
import subprocess
import sys

from postbc.envs.robosuite_tasks import _drop_benign_robosuite_logs


def test_listing_tasks_imports_no_simulator():
    code = (
        "import sys; from postbc.envs.registry import task_names; names = task_names();"
        "assert {'lift', 'can', 'square', 'mw-pick-place'} <= set(names), names;"
        "heavy = [m for m in ('robosuite', 'metaworld', 'mujoco') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_robosuite_log_filter_drops_only_known_chatter():
    _drop_benign_robosuite_logs()
    _drop_benign_robosuite_logs()  # idempotent
    logger = logging.getLogger("robosuite_logs")
    assert sum(getattr(f, "_postbc", False) for f in logger.filters) == 1

    def record(msg):
        return logging.LogRecord("robosuite_logs", logging.WARNING, __file__, 1, msg, None, None)

    assert not logger.filter(record("No private macro file found!"))
    assert logger.filter(record("Controller config for right arm is invalid"))
