"""A batch on Ray Data: the same files, resume, order, counts and exit codes as `run_batch`,
with the records executed by a pool of Ray actors on this machine or a cluster.

Only where records run changes. The driver reads and validates the input, recovers the
output files and leaves out what is already done (`open_batch`, `plan`), exactly as the
single-process runner does. The pending records go to Ray Data in windows of at most
`WINDOW` records (so the driver's memory stays bounded however long the input): one
`map_batches` over `RelabelActor`, a pool of actors that each build the LM and the program
once, from serialisable settings (`ActorSpec`: `LMSettings`, the program's JSON state and
its stages, never an LM object). An API key is read from each actor's own environment, by
the variable's name, as on the driver; it never travels with the work. Each actor runs its
records on `concurrency` threads. Results stream back to the driver, which writes them in
input order through the same writer as single-process (`InOrder`, `OpenBatch.write`).

Faults: Ray Data restarts an actor that dies and runs its unfinished batches again
(`max_restarts` / `max_task_retries`, unlimited by default), and the driver writes each
record once whatever comes back twice. A driver killed with `kill -9` takes its local Ray
with it; the results file is the commit mark, so the same command resumes. An interrupt
(Ctrl-C, SIGTERM) stops at once: the records in flight are not written and run again on
resume.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dspy

from agenther_dspy.formats import InvalidRecord, Record
from agenther_dspy.lm.factory import is_local
from agenther_dspy.runner.files import ResumeState
from agenther_dspy.runner.record import TrajectoryResult, process_record
from agenther_dspy.runner.schedule import BatchSummary, InOrder, Interrupts, open_batch, plan
from agenther_dspy.schema import AugmentedSample, OutputFormat, Trajectory
from agenther_dspy.settings import LMSettings

WINDOW = 20_000  # pending records per Ray dataset; bounds the driver's memory
# Each actor runs its records on `concurrency` threads; a Ray call hands it this many at a
# time, and enough calls run at once to keep about two records per thread in the actor.
MAX_RECORDS_PER_CALL = 8
REMOTE_ACTORS = 4  # default actors for a remote endpoint (at most the cluster's CPUs)
CONNECT_TIMEOUT_S = 60.0  # joining a cluster that answers on its port but not as Ray
PORT_TIMEOUT_S = 5.0


class RayError(Exception):
    """Ray cannot run the batch (not installed, unreachable, misconfigured); the message
    says what to do."""


@dataclass(frozen=True)
class ActorSpec:
    """Everything an actor needs to build the LM and the program: plain data only."""

    lm: LMSettings
    temperature: float | None
    output_format: str
    program_state: dict[str, Any]
    program_config: dict[str, Any]  # HindsightRelabeler's keyword arguments, less judge_lm
    judge_model: str | None
    program_hash: str
    concurrency: int
    keep_history: bool = False

    @classmethod
    def of(
        cls,
        program: Any,
        lm: LMSettings,
        *,
        temperature: float | None,
        output_format: OutputFormat | str,
        judge_model: str | None,
        concurrency: int,
    ) -> ActorSpec:
        from agenther_dspy.modules.program import program_hash
        from agenther_dspy.programs import program_config

        # DSPy's own JSON state (instructions and demos), through JSON so nothing else rides
        state = json.loads(json.dumps(program.dump_state(), default=str))
        return cls(
            lm, temperature, OutputFormat(output_format).value, state, program_config(program),
            judge_model, program_hash(program), concurrency,
        )  # fmt: skip

    def build(self) -> tuple[Any, dspy.LM]:
        """The program and the LM, in the actor; the key comes from this process's env."""
        from agenther_dspy.modules.program import HindsightRelabeler, program_hash

        self.lm.configure_cache()
        lm = self.lm.build(temperature=self.temperature)
        program = HindsightRelabeler(
            **self.program_config, judge_lm=self.lm.build_optional(self.judge_model)
        )
        program.load_state(self.program_state)
        if program_hash(program) != self.program_hash:
            raise RayError(
                "the program rebuilt on a Ray worker differs from the driver's: install the "
                "same agenther-dspy version on every node"
            )
        return program, lm


class RelabelActor:
    """One Ray actor: the LM and the program built once, records run on a thread pool."""

    def __init__(self, spec: ActorSpec) -> None:
        import ray

        from agenther_dspy.lm.local import THREADS_ENV

        # The embedded engine would use every core of the node; an actor has its CPU slots.
        slots = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        os.environ.setdefault(THREADS_ENV, str(max(1, round(slots))))
        self.spec = spec
        self.program, self.lm = spec.build()
        self.settings = dspy.settings.copy()
        self.pool = ThreadPoolExecutor(spec.concurrency, thread_name_prefix="relabel")

    def run(self, payload: tuple[str, str]) -> str:
        trajectory, where = payload
        file, line, index = json.loads(where)
        record = Record(Trajectory.model_validate_json(trajectory), file, line, index)
        result = process_record(
            self.program,
            record,
            self.lm,
            self.spec.output_format,
            settings=self.settings,
            keep_history=self.spec.keep_history,
        )
        return encode_result(result)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        payloads = zip(batch["trajectory"], batch["where"], strict=True)
        results = list(self.pool.map(self.run, payloads))
        return {"number": batch["number"], "result": results}


def encode_result(result: TrajectoryResult) -> str:
    data = result.to_json()
    data["index"] = result.index
    data["sample"] = result.sample.model_dump(mode="json") if result.sample else None
    return json.dumps(data, ensure_ascii=False)


def decode_result(text: str) -> TrajectoryResult:
    data = json.loads(text)
    sample = data.pop("sample")
    result = TrajectoryResult(**data)
    result.sample = AugmentedSample.model_validate(sample) if sample is not None else None
    return result


def encode_record(number: int, record: Record) -> dict[str, Any]:
    """One dataset row: the trajectory as pydantic's own JSON, and where it came from."""
    where = json.dumps([record.file, record.line, record.index])
    return {"number": number, "trajectory": record.trajectory.model_dump_json(), "where": where}


@dataclass
class RayCluster:
    """A Ray connection: started here (and shut down at the end) or joined."""

    address: str | None
    started_here: bool = False
    joined: bool = False
    cpus: int = 1
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        if self.started_here or self.joined:
            import ray

            ray.shutdown()


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise RayError(
            "--ray needs Ray Data: pip install 'agenther-dspy[ray]' (ray[data])"
        ) from None
    return ray


def _check_port(address: str) -> None:
    """Fail fast, naming the address, when nothing listens at host:port."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise RayError(f"--ray {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=PORT_TIMEOUT_S):
            pass
    except OSError as error:
        raise RayError(f"cannot reach the Ray cluster at {address}: {error}") from None


def connect(address: str | None, *, num_cpus: int | None = None) -> RayCluster:
    """Start a local Ray in this process (`address` None), or join a cluster (`auto`, a
    GCS `HOST:PORT`, or a Ray Client `ray://HOST:PORT`). A Ray already initialised in this
    process is used as it is."""
    ray = _import_ray()
    cluster = RayCluster(address)
    if address not in (None, "auto"):
        _check_port(address)
    if ray.is_initialized():
        cluster.cpus = int(ray.cluster_resources().get("CPU", 1))
        return cluster
    quiet = {"logging_level": logging.ERROR, "log_to_driver": True, "configure_logging": True}
    if address is None:
        cpus = num_cpus or (os.cpu_count() or 1)
        ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
        cluster.started_here = True
    else:
        failure: list[BaseException] = []

        def join() -> None:
            try:
                ray.init(address=address, **quiet)
            except BaseException as error:  # reported by the caller
                failure.append(error)

        joining = threading.Thread(target=join, name="ray-connect", daemon=True)
        joining.start()
        joining.join(CONNECT_TIMEOUT_S)
        if joining.is_alive():
            raise RayError(
                f"cannot join the Ray cluster at {address}: no answer in {CONNECT_TIMEOUT_S:.0f} s"
            )
        if failure:
            error = " ".join(str(failure[0]).split())[:300]
            raise RayError(f"cannot join the Ray cluster at {address}: {error}")
        cluster.joined = True
    cluster.cpus = int(ray.cluster_resources().get("CPU", 1))
    return cluster


def default_actors(model: str, cpus: int) -> int:
    """The embedded model: one actor per CPU slot (each loads the model once); a remote
    endpoint: a few actors, each with its own concurrency."""
    return max(1, cpus) if is_local(model) else max(1, min(REMOTE_ACTORS, cpus))


def _windows(
    items: Iterable[Record | TrajectoryResult], order: InOrder, stop: threading.Event
) -> Iterator[list[tuple[int, Record]]]:
    """Numbered pending records, WINDOW at a time; results that need no run (invalid and
    duplicate records) are handed to the in-order writer as their turn comes."""
    window: list[tuple[int, Record]] = []
    for item in items:
        if stop.is_set():
            break
        number = order.number()
        if isinstance(item, TrajectoryResult):
            order.deliver(number, item)
            continue
        window.append((number, item))
        if len(window) >= WINDOW:
            yield window
            window = []
    if window:
        yield window


def run_ray_batch(
    records: Iterable[Record | InvalidRecord],
    program: Any,
    *,
    lm_settings: LMSettings,
    output_path: str | Path,
    results_path: str | Path | None = None,
    output_format: OutputFormat | str = OutputFormat.SFT,
    temperature: float | None = None,
    judge_model: str | None = None,
    address: str | None = None,
    actors: int | None = None,
    concurrency: int = 1,
    retry_errors: bool = False,
    overwrite: bool = False,
    on_start: Callable[[ResumeState], None] | None = None,
    on_result: Callable[[TrajectoryResult], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
    on_ready: Callable[[RayCluster, int], None] | None = None,
) -> BatchSummary:
    """`run_batch` on Ray Data: `actors` actors (default: `default_actors`) running
    `concurrency` records each. `on_ready(cluster, actors)` is told where the batch runs."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if actors is not None and actors < 1:
        raise ValueError(f"--ray-actors must be at least 1, got {actors}")
    spec = ActorSpec.of(
        program, lm_settings, temperature=temperature, output_format=output_format,
        judge_model=judge_model, concurrency=concurrency,
    )  # fmt: skip
    cluster = connect(address, num_cpus=actors and max(actors, os.cpu_count() or 1))
    try:
        actors = actors or default_actors(lm_settings.model, cluster.cpus)
        if on_ready is not None:
            on_ready(cluster, actors)
        with open_batch(
            output_path, results_path, output_format=output_format, retry_errors=retry_errors,
            overwrite=overwrite, on_start=on_start, on_result=on_result,
        ) as batch:  # fmt: skip
            order = InOrder(batch.write)
            summary = batch.summary
            with Interrupts(on_interrupt) as interrupts:
                items = plan(records, batch.state.done)
                for window in _windows(items, order, interrupts.stop):
                    _run_window(window, spec, actors, order, interrupts.stop)
                    if interrupts.stop.is_set():
                        break
                summary.interrupted = interrupts.stop.is_set()
                summary.abandoned = order.unwritten
    finally:
        cluster.close()
    return summary


def _run_window(
    window: list[tuple[int, Record]],
    spec: ActorSpec,
    actors: int,
    order: InOrder,
    stop: threading.Event,
) -> None:
    import ray.data
    import ray.exceptions
    from ray.data import ActorPoolStrategy

    per_call = max(1, min(MAX_RECORDS_PER_CALL, spec.concurrency))
    calls = max(2, math.ceil(2 * spec.concurrency / per_call))
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-dataset INFO lines
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    items = [encode_record(number, record) for number, record in window]
    blocks = max(1, min(len(items) // per_call, 8 * actors * calls))
    dataset = ray.data.from_items(items, override_num_blocks=blocks)
    del items
    results = dataset.map_batches(
        RelabelActor,
        fn_constructor_kwargs={"spec": spec},
        batch_size=per_call,
        batch_format="numpy",
        compute=ActorPoolStrategy(
            size=actors,
            max_concurrent_calls_per_actor=calls,
            max_tasks_in_flight_per_actor=calls,
            enable_true_multi_threading=True,
        ),
        num_cpus=1,
    )
    pending = {number for number, _ in window}
    rows = results.iter_rows()
    try:
        for row in rows:
            number = int(row["number"])
            if number not in pending:  # a batch Ray ran twice: written once
                continue
            pending.discard(number)
            order.deliver(number, decode_result(row["result"]))
            if stop.is_set():
                return
    except ray.exceptions.RayError as error:  # an actor that cannot start, a lost node
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        cause = lines[-1][:400] if lines else type(error).__name__  # the message, not the trace
        raise RayError(
            f"the Ray batch stopped ({cause}); what was written is kept: run the same command "
            "again to resume"
        ) from None
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    if pending:
        raise RayError(
            f"Ray Data returned no result for {len(pending)} records; what was written is "
            "kept: run the same command again to resume"
        )


def ray_runner(
    address: str,
    actors: int | None,
    lm_settings: LMSettings,
    settings: Any,
    log: Callable[[str], None] | None = None,
) -> Callable[..., BatchSummary]:
    """`run_ray_batch` with `run_batch`'s signature, for `run --ray [ADDRESS]`: the address
    (`local` starts Ray here), the actors, and the settings the actors build from."""

    def tell(cluster: RayCluster, count: int) -> None:
        where = "a Ray started here" if cluster.started_here else f"Ray at {address}"
        line = f"Ray Data: {count} actors on {where} ({cluster.cpus} CPUs)"
        (log or (lambda text: print(text, file=sys.stderr, flush=True)))(line)

    def run(records: Any, program: Any, *, lm: Any = None, **batch: Any) -> BatchSummary:
        return run_ray_batch(
            records, program, lm_settings=lm_settings, temperature=settings.temperature,
            judge_model=settings.judge_model, address=None if address == "local" else address,
            actors=actors, on_ready=tell, **batch,
        )  # fmt: skip

    return run
