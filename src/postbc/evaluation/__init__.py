"""Evaluating policies: episodes with a success rate (`episodes`), `postbc eval` (`command`), and the
action-spread diagnostics of pretrained policies (`diagnostics`).

`from postbc.evaluation import evaluate, EvalResult, save_episode_strip` works as before the
package existed; the names load `episodes` on first use, so `postbc eval --help` stays fast.
"""

from __future__ import annotations

_EPISODES = ("evaluate", "EvalResult", "save_episode_strip")


def __getattr__(name: str):
    if name in _EPISODES:
        from postbc.evaluation import episodes

        return getattr(episodes, name)
    raise AttributeError(f"module 'postbc.evaluation' has no attribute {name!r}")
