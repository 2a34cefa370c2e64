"""``flow.serve()`` and ``daskflow serve``: start flow runs on a schedule, with no server.

One long-running process does it all: it computes the next slot of the
schedule (:mod:`daskflow.serving.schedules`), records the flow run for it as
SCHEDULED at once (``daskflow runs list`` shows when it will start), sleeps
until the slot, and starts the run on a thread of its own while it goes on to
the next slot. Every run is an ordinary flow run (SCHEDULED → PENDING →
RUNNING → …) on the flow's cluster — the embedded one is started before the
first slot, so a slot is not spent starting Dask.

Policies
--------
Missed slots
    Slots that passed while no serve process ran (since the last scheduled
    run of this flow that started, as the run store records it) are skipped
    by default; with ``catch_up=True`` (``--catch-up``) one run starts at
    once for the latest of them, however many there were.
Overlap
    At most ``limit`` runs of the flow from this process at a time (default
    1). When a slot comes while that many are running, its run waits
    (SCHEDULED) and starts as soon as one ends; slots that pass meanwhile are
    skipped, with a log line. ``limit=None`` (``--limit 0``) never waits.
Failures
    A run that fails is recorded FAILED (its hooks and alerts fire) and the
    process keeps serving.
Cancellation
    ``daskflow runs cancel ID`` (or ``FlowRun.cancel()``) on a running run
    cancels that run only; on the SCHEDULED run, skips its slot. Serving goes
    on either way.
Stopping
    Ctrl-C or SIGTERM stops serving: runs still going are **cancelled**, not
    finished — their task runs are cancelled on the cluster and every one of
    them, and the flow run, is recorded CANCELLED; the SCHEDULED run of the
    next slot is recorded CANCELLED too. serve waits up to
    ``daskflow.serve.grace-period`` (10 s) for the cancelled runs to wind up,
    then records any that have not as CANCELLED itself and returns. A second
    Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from daskflow import config
from daskflow.errors import ConfigurationError, ScheduleError
from daskflow.observers.events import FlowRunCreated, StateChanged, bus
from daskflow.serving.schedules import CronSchedule, IntervalSchedule, ScheduleSet, schedule_for
from daskflow.signal_handlers import SignalSafeEvent, handling
from daskflow.states import State, StateType

__all__ = ["serve"]

logger = logging.getLogger("daskflow.serve")

#: At most this many slots are counted when reporting skipped or missed ones.
_MAX_COUNTED = 10_000


def serve(
    flow: Any,
    name: str | None = None,
    *,
    cron: str | None = None,
    interval: timedelta | float | str | None = None,
    parameters: dict[str, Any] | None = None,
    timezone: str | tzinfo | None = None,
    catch_up: bool = False,
    limit: int | None = 1,
    stop: threading.Event | None = None,
    schedules: Any = None,
) -> None:
    """Start runs of ``flow`` on a schedule until stopped (see the module docstring).

    Parameters
    ----------
    flow
        The flow to serve.
    name
        The deployment's name (default: the flow's): ``daskflow deployments
        run FLOW/NAME`` and :func:`daskflow.run_deployment` ask it for runs
        (:mod:`daskflow.serving.requests`). With a name, the schedule may be
        left out: runs on request only.
    cron, interval, timezone
        The schedule: a cron expression read in ``timezone`` (an IANA name,
        default UTC), or an interval (``timedelta``, seconds, or ``"5m"``).
    parameters
        The parameters of every run, checked against the flow's signature
        before serving starts.
    schedules
        Or several schedules (:mod:`daskflow.schedules`: ``Cron``,
        ``Interval``, ``RRule``), each run with its schedule's parameters
        merged over ``parameters``; inactive ones start no runs.
    catch_up
        Start one run at once for slots missed while no serve process ran.
    limit
        At most this many runs at a time; None for no limit.
    stop
        Serving stops when this event is set (for serving from a thread;
        from the main thread Ctrl-C and SIGTERM stop it too).

    Raises
    ------
    ScheduleError
        A bad cron string, interval or timezone (before anything starts).
    ParameterValidationError
        A parameter does not fit the flow's signature.
    ConfigurationError
        ``limit`` is not a positive integer or None.
    """
    from daskflow.api.parameters import bind_parameters
    from daskflow.store import default_observer

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError("limit", limit, "a number of runs >= 1, or None for no limit")
    from daskflow.api.deployments import check_defaults
    from daskflow.serving.requests import DeploymentServer

    given = dict(parameters or {})
    schedule: CronSchedule | IntervalSchedule | ScheduleSet | None
    if schedules is not None:
        if cron is not None or interval is not None:
            raise ScheduleError("schedule", None, "give schedules= or cron=/interval=, not both")
        built = ScheduleSet.of(schedules, given, datetime.now(UTC))
        schedule = built if built.members else None  # none active: on request only
        check_defaults(flow, given)  # each schedule's runs may give the missing ones
        for merged in schedule.parameters if schedule is not None else ():
            bind_parameters(flow.name, flow.fn, (), merged, flow.options.validate_parameters)
    elif name is not None and cron is None and interval is None:
        schedule = None  # on request only
        check_defaults(flow, given)  # defaults of run requests: a request may give the rest
    else:
        schedule = schedule_for(cron=cron, interval=interval, timezone=timezone)
        bind_parameters(flow.name, flow.fn, (), given, flow.options.validate_parameters)
    observer = default_observer()
    server = _Server(flow, schedule, given, limit, observer.store if observer else None)
    described = schedule.describe() if schedule is not None else None
    deployment = DeploymentServer.open(server, flow, name, described, given, server.store)
    with _logging_to_stderr(), _signals(server), _quiet_progress():
        server.start(catch_up)
        if deployment is not None:
            deployment.start()
        try:
            server.loop(stop)
        finally:
            if deployment is not None:
                deployment.stop()


@dataclass
class _Slot:
    """The flow run recorded (SCHEDULED) for one slot of the schedule."""

    when: datetime
    flow_run_id: str
    token: Any  # its CancelToken while it waits (None: a run request's run)
    parameters: dict[str, Any] | None = None  # its own (a request's, a schedule's); None: serve's


class _Server:
    """The serve loop of one flow: one slot at a time, runs on threads."""

    def __init__(
        self,
        flow: Any,
        schedule: CronSchedule | IntervalSchedule | ScheduleSet | None,
        parameters: dict[str, Any],
        limit: int | None,
        store: Any,
    ) -> None:
        self.flow = flow
        self.schedule = schedule
        self.parameters = parameters
        self.limit = limit
        self.store = store
        self.wake = SignalSafeEvent()  # set by the signal handler too
        self.stopping: str | None = None  # why, once asked to stop
        self.hurry = SignalSafeEvent()  # a second Ctrl-C: stop waiting for runs to wind up
        self.active: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._next: datetime | None = None

    # -- the loop ----------------------------------------------------------------
    def start(self, catch_up: bool) -> None:
        """Start the flow's cluster, and choose the first slot (the policy for missed ones)."""
        from daskflow.engine.runner import make_backend

        runner = self.flow.options.task_runner
        if runner is None:
            where = make_backend(self.flow.options.cluster).describe()  # the embedded one starts
        else:
            where = repr(runner)  # its cluster is made for each run (or on first use)
        if self.schedule is None:  # a deployment served on request only
            logger.info(
                "serving flow %s on request on %s; limit %s; Ctrl-C or SIGTERM to stop",
                self.flow.name,
                where,
                self.limit or "none",
            )
            return
        now = datetime.now(UTC)
        if isinstance(self.schedule, ScheduleSet):  # their slots count from now (if no anchor)
            self.schedule = self.schedule.started(now + timedelta(milliseconds=1))
        last = self.store.last_scheduled_time(self.flow.name) if self.store is not None else None
        schedule = self.schedule
        if isinstance(schedule, IntervalSchedule):
            # interval slots go on from the last scheduled run (a fresh flow starts now)
            anchor = datetime.fromtimestamp(last, UTC) if last is not None else now
            schedule = self.schedule = IntervalSchedule(
                schedule.interval, anchor, schedule.timezone
            )
        missed, latest = (
            (0, None)
            if last is None
            else _slots_between(schedule, datetime.fromtimestamp(last, UTC), now)
        )
        if missed and catch_up:
            logger.warning(
                "%d slot(s) of %s were missed since %s: catching up with one run now",
                missed,
                self.flow.name,
                _local(datetime.fromtimestamp(last or 0, UTC)),
            )
            self._next = latest
        else:
            if missed:
                logger.warning(
                    "%d slot(s) of %s were missed since %s: skipped (catch_up is off)",
                    missed,
                    self.flow.name,
                    _local(datetime.fromtimestamp(last or 0, UTC)),
                )
            if isinstance(schedule, IntervalSchedule) and last is None:
                self._next = schedule.anchor  # a fresh interval schedule starts now
            else:
                self._next = schedule.next_after(now)
        logger.info(
            "serving flow %s %s on %s; limit %s; Ctrl-C or SIGTERM to stop",
            self.flow.name,
            schedule.describe(),
            where,
            self.limit or "none",
        )

    def loop(self, stop: threading.Event | None) -> None:
        if stop is not None:

            def watch_stop() -> None:
                stop.wait()
                self.request_stop("stop was set")

            threading.Thread(target=watch_stop, name="daskflow-serve-stop", daemon=True).start()
        slot: _Slot | None = None
        try:
            while self.stopping is None and self.schedule is None:  # on request only
                self.wake.wait(1.0)
                self.wake.clear()
            while self.stopping is None:
                assert self._next is not None
                slot = self._schedule(self._next)
                outcome = self._wait(slot)
                if outcome == "stop":
                    break
                self._release(slot)
                if outcome == "start" and self._requested(slot):
                    outcome = "cancelled"
                if outcome == "cancelled":
                    self._record(slot, StateType.CANCELLED, "cancelled before its slot")
                    logger.info("slot %s skipped: its run was cancelled", _local(slot.when))
                else:
                    self._launch(slot)
                when, slot = slot.when, None
                try:
                    self._next = self._following(when)
                except ScheduleError as exc:  # a cron whose years ran out
                    logger.warning("%s: serving stops once its runs end", exc)
                    self._finish_active()
                    break
        finally:
            self._shutdown(slot)

    def _finish_active(self) -> None:
        """Wait for the runs this process started to end (there is no slot left)."""
        with self._lock:
            running = list(self.active.values())
        for thread in running:
            thread.join()

    def _schedule(self, when: datetime) -> _Slot:
        """Record the run of slot ``when`` as SCHEDULED, watched for cancellation."""
        from daskflow.api.flow_run import run_name, run_watch
        from daskflow.engine.cancellation import open_token

        flow = self.flow
        flow_run_id = uuid.uuid4().hex
        now = time.time()
        schedule = self.schedule
        parameters = (
            schedule.parameters_at(when) if isinstance(schedule, ScheduleSet) else self.parameters
        )
        if bus.active:
            bus.publish(
                [
                    FlowRunCreated(
                        flow_run_id,
                        flow.name,
                        run_name(flow, parameters, flow_run_id),
                        parameters,
                        None,
                        now,
                        flow.options.version,
                        None,
                        flow.entrypoint,
                        scheduled_time=when.timestamp(),
                    ),
                    StateChanged(
                        flow_run_id,
                        None,
                        State(StateType.SCHEDULED, now, f"scheduled for {_local(when)}"),
                    ),
                ]
            )
            bus.flush()
        token = open_token(flow_run_id)
        token.on_cancel(self.wake.set)
        if self.store is not None:
            run_watch(self.store).register(flow_run_id)
        logger.info("next run of %s at %s (flow run %s)", flow.name, _local(when), flow_run_id[:8])
        return _Slot(when, flow_run_id, token, parameters)

    def _wait(self, slot: _Slot) -> str:
        """Sleep until the slot and a free place under the limit: "start", "cancelled", "stop"."""
        said = False
        while True:
            self.wake.clear()
            if self.stopping is not None:
                return "stop"
            if slot.token.cancelled:
                return "cancelled"
            left = slot.when.timestamp() - time.time()
            if left > 0:
                self.wake.wait(left)
                continue
            with self._lock:
                running = len(self.active)
            if self.limit is None or running < self.limit:
                return "start"
            if not said:
                logger.warning(
                    "the run for %s waits: %d run(s) of %s still running (limit %d)",
                    _local(slot.when),
                    running,
                    self.flow.name,
                    self.limit,
                )
                said = True
            self.wake.wait(1.0)

    def _launch(self, slot: _Slot) -> None:
        # a daemon: once serve stopped and recorded it, a run whose function does not
        # return (code Python cannot interrupt) does not keep the process alive
        with self._lock:
            self._launch_locked(slot)

    def _launch_locked(self, slot: _Slot) -> None:
        thread = threading.Thread(
            target=self._run,
            args=(slot,),
            name=f"daskflow-serve-{slot.flow_run_id[:8]}",
            daemon=True,
        )
        self.active[slot.flow_run_id] = thread
        thread.start()

    def _run(self, slot: _Slot) -> None:
        from daskflow.api.flow_run import run_flow

        late = time.time() - slot.when.timestamp()
        what = "request" if slot.token is None else "slot"
        logger.info("starting flow run %s (%.3f s after its %s)", slot.flow_run_id[:8], late, what)
        parameters = self.parameters if slot.parameters is None else slot.parameters
        try:
            state = run_flow(
                self.flow,
                (),
                dict(parameters),
                True,
                scheduled=slot.flow_run_id,
                scheduled_time=slot.when.timestamp(),
            )
            took = time.time() - slot.when.timestamp() - late
            log = logger.info if state.is_completed() else logger.warning
            log("flow run %s ended %s in %.2f s", slot.flow_run_id[:8], state.type.value, took)
        except BaseException:  # a bug here must not stop serving
            logger.exception("flow run %s could not run", slot.flow_run_id[:8])
        finally:
            with self._lock:
                self.active.pop(slot.flow_run_id, None)
            self.wake.set()

    # -- run requests of the deployment (daskflow.serving.requests) -------------------
    def running(self) -> int:
        with self._lock:
            return len(self.active)

    def launch_request(
        self, flow_run_id: str, parameters: dict[str, Any], requested: float | None
    ) -> bool:
        """Start a claimed run request like a slot; False when serve is stopping."""
        when = datetime.fromtimestamp(requested or time.time(), UTC)
        with self._lock:  # _shutdown cancels what is active once stopping is set
            if self.stopping is not None:
                return False
            self._launch_locked(_Slot(when, flow_run_id, None, parameters))
        return True

    def record_cancelled(self, flow_run_id: str, message: str) -> None:
        self._record(_Slot(datetime.now(UTC), flow_run_id, None), StateType.CANCELLED, message)

    def _following(self, when: datetime) -> datetime:
        """The slot after ``when`` that has not passed; log the ones that did."""
        assert self.schedule is not None  # slots exist only on a schedule
        now = datetime.now(UTC)
        skipped, _ = _slots_between(self.schedule, when, now)
        following = self.schedule.next_after(max(when, now))
        if skipped:
            logger.warning(
                "%d slot(s) of %s skipped while its run waited (limit %s)",
                skipped,
                self.flow.name,
                self.limit,
            )
        return following

    # -- stopping ------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        if self.stopping is None:
            self.stopping = reason
        self.wake.set()

    def _shutdown(self, slot: _Slot | None) -> None:
        """Cancel what still runs, record the unstarted slot CANCELLED, wait a little."""
        from daskflow.engine.cancellation import cancel_flow_run

        reason = f"serve stopped ({self.stopping or 'error'})"
        if slot is not None:
            self._release(slot)
            self._record(slot, StateType.CANCELLED, f"{reason} before its slot")
        with self._lock:
            self.stopping = self.stopping or "error"  # no run request starts from now on
            running = dict(self.active)
        for flow_run_id in running:
            cancel_flow_run(flow_run_id, reason)
        deadline = time.monotonic() + config.get_seconds("serve.grace-period")
        for flow_run_id, thread in running.items():
            while thread.is_alive() and not self.hurry.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                thread.join(min(left, 0.1))  # in steps: a second Ctrl-C stops the wait
            if thread.is_alive():  # the flow function does not return: record it ourselves
                logger.warning(
                    "flow run %s did not stop %s",
                    flow_run_id[:8],
                    "before the second Ctrl-C" if self.hurry.is_set() else "in time",
                )
                if bus.active:
                    bus.publish(
                        [
                            StateChanged(
                                flow_run_id,
                                None,
                                State(StateType.CANCELLED, message=f"{reason}; it did not stop"),
                            )
                        ]
                    )
        bus.flush()
        logger.info("stopped serving %s", self.flow.name)

    # -- helpers ----------------------------------------------------------------------
    def _release(self, slot: _Slot) -> None:
        """The slot's run no longer waits: stop watching it as a SCHEDULED run."""
        from daskflow.api.flow_run import run_watch
        from daskflow.engine.cancellation import close_token

        close_token(slot.flow_run_id)
        if self.store is not None:
            run_watch(self.store).unregister(slot.flow_run_id)

    def _requested(self, slot: _Slot) -> bool:
        """Whether cancellation was asked for just before the slot (read once, now)."""
        return self.store is not None and bool(self.store.cancel_requests([slot.flow_run_id]))

    def _record(self, slot: _Slot, state: StateType, message: str) -> None:
        if bus.active:
            bus.publish([StateChanged(slot.flow_run_id, None, State(state, message=message))])
            bus.flush()


def _slots_between(
    schedule: CronSchedule | IntervalSchedule | ScheduleSet, after: datetime, until: datetime
) -> tuple[int, datetime | None]:
    """How many slots lie in ``(after, until]`` (at most ``_MAX_COUNTED``), and the latest."""
    count = 0
    slot = schedule.next_after(after)
    while slot <= until and count < _MAX_COUNTED:
        count += 1
        slot = schedule.next_after(slot)
    return count, schedule.last_until(until) if count else None


def _local(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


@contextlib.contextmanager
def _signals(server: _Server) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop serving (a second Ctrl-C stops at once); main thread only.

    The second Ctrl-C ends the wait for the cancelled runs rather than raising
    ``KeyboardInterrupt`` in whatever the main thread does: the runs still
    going are recorded CANCELLED as at the end of the grace period, and the
    process exits 0 without a traceback.
    """

    def on_signal(number: int, frame: Any) -> None:
        if number == signal.SIGINT and server.stopping is not None:
            server.hurry.set()
        server.request_stop(signal.Signals(number).name)

    with handling({signal.SIGINT: on_signal, signal.SIGTERM: on_signal}):
        yield


@contextlib.contextmanager
def _logging_to_stderr() -> Iterator[None]:
    """Show serve's log lines on stderr unless logging is set up already.

    Each run prints its own records (:func:`daskflow.progress.show_run`).
    """
    from daskflow.progress.console_logs import show_on_stderr

    if logging.getLogger().handlers or logging.getLogger("daskflow.serve").handlers:
        yield
        return
    undo = show_on_stderr("daskflow.serve")
    try:
        yield
    finally:
        undo()


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """No live progress display: runs overlap, and serve's log lines say what happens."""
    import dask.config

    with dask.config.set({"daskflow.progress": False}):
        yield
