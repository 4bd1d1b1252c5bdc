"""Expert family hook: `postbc.experts.registry` imports this module for Meta-World tasks."""

import functools

from postbc.envs.metaworld_tasks import PREFIX, V3_ENV_NAMES
from postbc.envs.metaworld_multitask import NAME as MT10
from postbc.experts.metaworld_experts import make_metaworld_expert, make_mt10_expert
from postbc.experts.operators import OPERATORS
from postbc.experts.registry import register_expert

for _short in V3_ENV_NAMES:
    register_expert(PREFIX + _short, list(OPERATORS), functools.partial(make_metaworld_expert, PREFIX + _short))
register_expert(MT10, list(OPERATORS), make_mt10_expert)
