"""Input files load as AgentHER wrote them, and every defect is named with its place."""

from __future__ import annotations

import json

import pytest
from conftest import EXAMPLES, REAL_FAILED, REAL_SUCCESS, write_jsonl

from agenther_dspy.formats import InputError, InvalidRecord, Record, read_trajectories
from agenther_dspy.schema import Trajectory


def test_agenther_example_file_loads_unchanged():
    records = list(read_trajectories(EXAMPLES))
    assert [type(r) for r in records] == [Record] * 3
    assert [r.trajectory.trajectory_id for r in records] == ["traj_001", "traj_002", "traj_003"]
    assert [r.index for r in records] == [0, 1, 2]
    first = records[0].trajectory
    assert first.steps[0].action_input == {"query": "copper wire suppliers bulk pricing per kg"}
    assert first.metadata == {"domain": "procurement", "difficulty": "medium"}
    # Line numbers point at each object's opening brace in the array.
    lines = EXAMPLES.read_text().splitlines()
    assert all(lines[r.line - 1].strip() == "{" for r in records)


@pytest.mark.needs_shared
@pytest.mark.parametrize("path,count", [(REAL_FAILED, 191), (REAL_SUCCESS, 154)])
def test_real_tau2_logs_load(path, count):
    records = list(read_trajectories(path))
    assert len(records) == count
    assert all(isinstance(r, Record) for r in records)
    assert records[0].line == 1 and records[-1].line == count


def test_jsonl_defects_are_reported_with_line_and_valid_records_kept(tmp_path, copper):
    good = copper.model_dump()
    no_steps = {**good, "steps": []}
    no_prompt = {k: v for k, v in good.items() if k != "original_prompt"}
    bad_step = {**good, "steps": [{"action_name": "x"}]}
    path = write_jsonl(tmp_path / "in.jsonl", [good, no_steps, no_prompt, bad_step, [1, 2]])
    with path.open("a") as handle:
        handle.write("{not json\n\n")
        handle.write(json.dumps(good) + "\n")
    records = list(read_trajectories(path))
    invalid = [r for r in records if isinstance(r, InvalidRecord)]
    assert [r.line for r in records if isinstance(r, Record)] == [1, 8]
    assert [(r.line, r.reason) for r in invalid] == [
        (2, "steps: List should have at least 1 item after validation, not 0"),
        (3, "original_prompt: Field required"),
        (4, "steps.0.observation: Field required"),
        (5, "expected a JSON object, got list"),
        (6, "invalid JSON: Expecting property name enclosed in double quotes"),
    ]
    assert str(invalid[0]) == f"{path}:2: " + invalid[0].reason


def test_json_array_defects_name_index_and_line(tmp_path):
    items = json.loads(EXAMPLES.read_text())
    del items[1]["steps"][0]["observation"]
    items[2]["steps"] = "none"
    path = tmp_path / "corrupt.json"
    path.write_text(json.dumps(items, indent=2))
    records = list(read_trajectories(path))
    assert isinstance(records[0], Record)
    bad = [r for r in records if isinstance(r, InvalidRecord)]
    assert [(r.index, r.reason) for r in bad] == [
        (1, "steps.0.observation: Field required"),
        (2, "steps: Input should be a valid list"),
    ]
    lines = path.read_text().splitlines()
    assert all(lines[r.line - 1].strip() == "{" for r in bad)
    assert "(item 1)" in str(bad[0])


def test_truncated_array_stops_with_a_located_error(tmp_path):
    text = EXAMPLES.read_text()
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2])
    records = list(read_trajectories(path))
    assert isinstance(records[0], Record)
    assert isinstance(records[-1], InvalidRecord)
    assert records[-1].reason.startswith("invalid JSON")


def test_whole_file_problems_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(read_trajectories(tmp_path / "missing.jsonl"))
    (tmp_path / "empty.jsonl").write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        list(read_trajectories(tmp_path / "empty.jsonl"))
    (tmp_path / "csv.txt").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="JSON array or JSON lines"):
        list(read_trajectories(tmp_path / "csv.txt"))


def test_missing_id_is_generated_from_content_and_stable(copper):
    data = copper.model_dump(exclude={"trajectory_id"})
    first, again = Trajectory.model_validate(data), Trajectory.model_validate(data)
    assert first.trajectory_id.startswith("traj-") and first.trajectory_id == again.trajectory_id
    changed = Trajectory.model_validate({**data, "final_answer": "different"})
    assert changed.trajectory_id != first.trajectory_id


def test_unknown_fields_are_kept_in_metadata(copper):
    data = {**copper.model_dump(), "reward": 0.0}
    trajectory = Trajectory.model_validate(data)
    assert trajectory.metadata["extra_fields"] == {"reward": 0.0}
    assert trajectory.metadata["domain"] == "procurement"
