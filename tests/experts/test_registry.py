import pytest

from postbc.errors import PostBCError
from postbc.experts import Expert, expert_operators, get_expert, register_expert
from postbc.experts import registry


def test_toy_experts_are_found_lazily_by_task_family():
    assert expert_operators("toy") == ["steady", "fast", "careful", "lefty", "mixed"]
    expert = get_expert("toy", "careful")
    assert isinstance(expert, Expert) and expert.operator == "careful"


def test_unknown_operator_lists_the_known_ones():
    with pytest.raises(PostBCError, match="no operator 'bob'; choose one of: steady, fast, careful, lefty, mixed"):
        get_expert("toy", "bob")


def test_task_without_expert_and_unknown_task(monkeypatch):
    monkeypatch.setattr(registry, "_EXPERTS", {})
    monkeypatch.setattr(registry, "_load", lambda task: None)
    with pytest.raises(PostBCError, match="task 'toy' has no scripted expert"):
        get_expert("toy")
    monkeypatch.undo()
    with pytest.raises(PostBCError, match="unknown task 'nope'"):
        get_expert("nope")


def test_mixed_is_reserved():
    with pytest.raises(ValueError, match="reserved"):
        register_expert("toy", ["mixed"], lambda name: None)
