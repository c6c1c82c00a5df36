"""Batch execution: every input record in, one results line per record out, accepted
training rows appended as records finish, and a batch that can be stopped and resumed at
any point without losing or repeating a row.

Two files are written, both append-only and both written only by the calling thread:

- the training rows (`output_path`), one JSON line per accepted trajectory;
- the results file (`results_path`), one JSON line per input record: its status (accepted /
  rejected / skipped / error / invalid), the stage it reached, the reason, the confidences,
  and the LM calls and tokens it cost.

For each finished trajectory the training row is written and flushed *before* its results
line, so a results line is the commit mark of its trajectory. `recover()` restores that
invariant after any kind of stop (Ctrl-C, `kill -9`, a full disk): it drops a half-written
last line of either file, drops training rows whose trajectory has no `accepted` results
line, and drops `accepted` results lines whose training row is missing (those trajectories
run again, mostly from the LM cache). What remains in the results file is what is done.

Records are keyed by `trajectory_id` (a content hash when the input has none). A second
record with an id already seen in the same input is not processed: it gets its own results
line, status `skipped`, reason `duplicate trajectory_id: ...`, keyed by its position.
Invalid records are keyed by their position too (`@line:N`, or `@item:N` in a JSON array).

Work goes to `concurrency` daemon threads with at most `2 × concurrency` records running.
Both files are written in input order, so the same input gives the same files whatever the
thread timing: a finished record waits for the ones before it, and no new record starts
while `max(256, 16 × concurrency)` are unwritten. So memory stays flat however long the
input is, and a hard kill loses at most that many finished records (they run again on
resume, answered from the LM cache when it is on). Each thread runs the program inside its
own `dspy.context` (`execution.execute`): the LM, and a DSPy usage tracker per record that
counts its LM calls and tokens. Nothing here calls `dspy.configure`.

The parts: `record` (one record → one results line), `files` (the two files and recovery),
`schedule` (`open_batch`, workers, the in-order writer, interrupts, `run_batch`), `ray_batch`
(the same batch on Ray Data actors; imports Ray only when used) and `progress`.
"""

from agenther_dspy.runner.files import ResumeError, ResumeState, default_results_path, recover
from agenther_dspy.runner.progress import BatchProgress, count_input_records, counts_text
from agenther_dspy.runner.record import STATUSES, TrajectoryResult, process_record
from agenther_dspy.runner.schedule import BatchSummary, run_batch

__all__ = [
    "STATUSES",
    "BatchProgress",
    "BatchSummary",
    "ResumeError",
    "ResumeState",
    "TrajectoryResult",
    "count_input_records",
    "counts_text",
    "default_results_path",
    "process_record",
    "recover",
    "run_batch",
]
