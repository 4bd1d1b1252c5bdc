"""Expert family hook: `postbc.experts.registry` imports this module for robosuite tasks."""

import functools

from postbc.experts.operators import OPERATORS
from postbc.experts.registry import register_expert
from postbc.experts.robosuite_experts import PLANS, make_robosuite_expert

for _task in PLANS:
    register_expert(_task, list(OPERATORS), functools.partial(make_robosuite_expert, _task))
