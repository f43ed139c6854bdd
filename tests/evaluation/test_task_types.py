"""The typed task registry: YAML mappings → per-type configs, with errors that name the entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from medalign.evaluation.task_types import (
    TASK_TYPES, LinearProbeTask, RetrievalTask, SaliencyTask, Task, ZeroShotTask, parse_task, register_task,
)


def test_every_shipped_type_is_registered_with_its_own_fields():
    assert set(TASK_TYPES) == {"zero_shot", "binary_zero_shot", "retrieval", "linear_probe", "report_retrieval", "saliency"}
    retrieval = parse_task({"type": "retrieval", "ks": [1, 3]})
    assert isinstance(retrieval, RetrievalTask) and retrieval.ks == [1, 3] and not hasattr(retrieval, "prompts")
    probe = parse_task({"type": "linear_probe", "fractions": [0.5], "blank": "ignore"})
    assert isinstance(probe, LinearProbeTask) and probe.labelled and probe.blank == "ignore"
    assert parse_task({"type": "zero_shot"}).title == "zero_shot"
    assert parse_task({"type": "saliency", "method": "rollout", "name": "gaze"}).title == "gaze"


@pytest.mark.parametrize("entry, message", [
    ({"type": "retrieval", "prompts": "x.json"}, r"tasks\[3\] \(retrieval\): unknown keys \['prompts'\]; a retrieval task takes"),
    ({"type": "zero_shots"}, r"unknown task type 'zero_shots'; known: \['binary_zero_shot'"),
    ({"ks": [1]}, "must be a mapping with a 'type'"),
    ({"type": "retrieval", "uncertain": "ones"}, r"unknown keys \['uncertain'\]"),  # retrieval has no labels
])
def test_bad_entries_name_the_entry_and_the_valid_keys(entry, message):
    with pytest.raises(ValueError, match=message):
        parse_task(entry, index=3)


def test_a_new_task_type_plugs_in():
    @register_task
    @dataclass
    class CountTask(Task):
        type: ClassVar[str] = "count_rows"
        factor: int = 1

        def run(self, runner, manifest):
            return {"rows": 0}, 0, {}

    try:
        task = parse_task({"type": "count_rows", "factor": 2})
        assert isinstance(task, CountTask) and task.factor == 2
    finally:
        TASK_TYPES.pop("count_rows")


def test_typed_tasks_pass_through():
    task = ZeroShotTask(name="z", aggregation="max")
    assert parse_task(task) is task and isinstance(SaliencyTask(), Task)
