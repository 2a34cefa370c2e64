"""Bad inputs, generated: the strategies and checks of the fuzz tests, and their counts.

Four families of input a user types or passes (SPEC §12: bad input gives one
clear message naming the thing that is wrong, and loses no recorded run):

- **CLI parameters**: ``-p KEY=VALUE`` text, parsed for a flow with typed
  parameters (:func:`check_cli_pair`);
- **schedules**: cron strings, intervals and timezones (:func:`check_schedule`);
- **flow parameters**: arbitrary Python values passed to a typed flow
  (:func:`check_flow_call`);
- **names**: flow and task names and run-name templates (:func:`check_names`).

Each ``check_*`` returns ``"accepted"`` (a valid input did what it should) or
``"refused"`` (a :class:`~daskflow.DaskflowError` whose one-line message
names the subject), and raises :class:`WrongAnswer` (or lets daskflow's own
exception through) for anything else. A run a check starts is only counted
once it is found in the run store: :func:`confirm_recorded` looks the runs up
after a batch of examples (one flush, not one per example).

``tests/test_fuzz.py`` runs the checks under hypothesis; :func:`fuzz_table`
counts outcomes over ``n`` examples per family for ``benchmarks/chaos.py``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Optional

import hypothesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from daskflow import flow, task
from daskflow.errors import DaskflowError, ParameterValidationError, ScheduleError
from daskflow.observers.events import Event, FlowRunCreated, Observer, bus
from daskflow.states import State
from tests.resources.typed import typed

__all__ = [
    "CLI_NASTY",
    "WrongAnswer",
    "check_cli_pair",
    "check_flow_call",
    "check_names",
    "check_schedule",
    "cli_pairs",
    "confirm_recorded",
    "flow_calls",
    "fuzz_table",
    "name_options",
    "schedules",
]

#: The longest message that still reads as "one clear line".
MAX_MESSAGE = 600


class WrongAnswer(AssertionError):
    """daskflow answered a bad input, but not with one clear ``DaskflowError``."""


def _one_clear_line(exc: DaskflowError, *subjects: str) -> None:
    message = str(exc)
    if "\n" in message or "\r" in message or len(message) > MAX_MESSAGE:
        raise WrongAnswer(f"{type(exc).__name__} message is not one short line: {message!r:.300}")
    for subject in subjects:
        if subject not in message:
            raise WrongAnswer(f"message does not name {subject!r}: {message!r:.300}")


# -- family 1: ``-p KEY=VALUE`` ------------------------------------------------


TYPED_NAMES = ("n", "x", "s", "tags", "d", "flag", "when", "note")

#: Values that broke parsers before: JSON edge cases, huge numbers, deep nesting.
CLI_NASTY = (
    "NaN",
    "-Infinity",
    "1e999",
    "9" * 5000,
    "[" * 5000,
    "[1,",
    '{"a": }',
    "null",
    "true",
    '"quoted"',
    '["a", 1]',
    '{"k": [1, {"z": null}]}',
    "2024-02-30",
    "2024-01-01T25:00:00",
    "0x10",
    "1_000",
    "",
    " ",
    "\x00",
    "\u202etxt",
    "\ud800",
)

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def cli_pairs() -> st.SearchStrategy[str]:
    """``KEY=VALUE`` text: known and unknown keys, no ``=``, any value."""
    keys = (
        st.sampled_from(TYPED_NAMES)
        | st.text(max_size=8)
        | st.sampled_from(["", " ", " n ", "1n", "n-x", "é", "class", "n\x00"])
    )
    separators = st.sampled_from(["=", "=", "=", "", "==", " = "])
    values = (
        st.text()
        | st.sampled_from(CLI_NASTY)
        | _json_values.map(lambda v: json.dumps(v, allow_nan=True))
        | st.integers().map(str)
        | st.floats().map(repr)
    )
    return st.builds(lambda k, sep, v: k + sep + v, keys, separators, values)


def check_cli_pair(pair: str) -> str:
    """Parse one ``-p`` pair for :data:`typed` and validate it, as ``daskflow run`` does."""
    from daskflow.api.parameters import bind_parameters, cut
    from daskflow.cli.run import parse_parameters

    key = pair.partition("=")[0].strip()
    try:
        parsed = parse_parameters([pair], typed)
        bind_parameters(typed.name, typed.fn, (), parsed, True)
    except ParameterValidationError as exc:
        if "=" in pair and key.isidentifier():
            named = cut(key)  # a long name is cut, not repeated in full
            _one_clear_line(exc, f"parameter {named!r}")
            if exc.parameter != named:
                raise WrongAnswer(f"{pair!r:.80} refused naming {exc.parameter!r}") from exc
        else:
            _one_clear_line(exc, "KEY=VALUE")
        return "refused"
    if set(parsed) - set(TYPED_NAMES):
        raise WrongAnswer(f"{pair!r:.80} accepted a parameter the flow does not take")
    return "accepted"


# -- family 2: schedules ------------------------------------------------------

_cron_fields = st.sampled_from(
    ["*", "*/5", "0", "59", "60", "1-5", "5-1", "L", "1W", "5#2", "MON", "jan", "?", "H",
     "*/0", "-1", "1,2", "99999999999999999999", "2020-2030", "\x00", "१"]
) | st.text(max_size=4)  # fmt: skip
_valid_crons = st.tuples(
    st.sampled_from(["*", "0", "30", "*/15", "0-59/7", "5,35"]),
    st.sampled_from(["*", "2", "*/6", "9-17", "0,12"]),
    st.sampled_from(["*", "1", "15", "31", "L", "1-7"]),
    st.sampled_from(["*", "1", "2", "*/3", "jan-jun"]),
    st.sampled_from(["*", "0", "mon-fri", "sun", "5#2"]),
    st.sampled_from(["", "0", "30", "*/20"]),
).map(lambda fields: " ".join(fields).strip())
_crons = (
    st.text()
    | _valid_crons
    | _valid_crons
    | st.lists(_cron_fields, min_size=1, max_size=7).map(" ".join)
    | st.sampled_from(
        [
            "@hourly",
            "@daily",
            "@reboot",
            "@every 5m",
            "@",
            "0 0 30 2 *",
            "0 0 29 2 *",
            "0 2 * * * 30",
            "0 0 1 1 * 0 2020-2030",
            "0 0 1 1 * 0 2099",
            " ",
            "0 * * * *",
        ]
    )
)
_intervals = (
    st.text(max_size=12)
    | st.floats(min_value=0.001, max_value=1e6)
    | st.sampled_from(["30", "30s", "5m", "1h", "1d", "1.5h"])
    | st.floats()
    | st.integers()
    | st.timedeltas()
    | st.booleans()
    | st.sampled_from(["0", "-1", "1e400", "nan", "inf", "5m", "1 h", "1w", "1us", "1e20", ""])
)
_timezones = (
    st.none()
    | st.sampled_from(
        [
            "UTC",
            "utc",
            "Europe/Berlin",
            "America/St_Johns",
            "Asia/Kathmandu",
            "Etc/GMT+14",
            "../etc/passwd",
            "/etc/localtime",
            "",
            "Factory",
            "A" * 300,
            "\x00",
            "Europe",
        ]
    )
    | st.text(max_size=20)
)


def schedules() -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``schedule_for``: a cron or an interval (or both, or neither)."""
    return (
        st.builds(lambda c, z: {"cron": c, "timezone": z}, _crons, _timezones)
        | st.builds(lambda i, z: {"interval": i, "timezone": z}, _intervals, _timezones)
        | st.builds(lambda c, i: {"cron": c, "interval": i}, _crons, _intervals)
        | st.just({})
    )


def check_schedule(kwargs: dict[str, Any]) -> str:
    """A valid schedule has future, increasing slots; anything else is a ``ScheduleError``."""
    from daskflow.serving.schedules import schedule_for

    try:
        schedule = schedule_for(**kwargs)
    except ScheduleError as exc:
        _one_clear_line(exc)
        return "refused"
    now = datetime.now(UTC)
    first = schedule.next_after(now)
    if not first > now:
        raise WrongAnswer(f"{kwargs!r:.100}: first slot {first} is not after {now}")
    try:
        second = schedule.next_after(first)
    except ScheduleError as exc:  # an expression with one slot left
        _one_clear_line(exc)
    else:
        if not second > first:
            raise WrongAnswer(f"{kwargs!r:.100}: slots {first}, {second} do not increase")
    last = schedule.last_until(now)
    if last is not None and last > now:
        raise WrongAnswer(f"{kwargs!r:.100}: last slot {last} is after {now}")
    schedule.describe()
    return "accepted"


# -- family 3: flow parameters ------------------------------------------------


class Opaque:
    """An object JSON cannot encode."""

    def __repr__(self) -> str:
        return "<Opaque>"


@flow(cluster="sync", name="fuzz-parameters")
def typed_call(
    n: int = 1,
    x: float = 1.0,
    s: str = "s",
    tags: list[str] | None = None,
    d: dict[str, Any] | None = None,
    flag: bool = False,
    when: datetime | None = None,
    note: Optional[str] = None,  # noqa: UP045
    anything: Any = None,
    untyped=None,  # no hint: never checked
) -> int:
    return 1


@flow(cluster="sync", name="fuzz-awkward")
def awkward(
    json: int = 1,
    model_config: str = "",
    _private: int = 0,
    schema: list[int] | None = None,
    later: Undefined = None,  # type: ignore[name-defined]  # noqa: F821  (never defined)
) -> int:
    """Parameter names pydantic models reserve, and a hint that cannot be resolved."""
    return 1


PARAMETER_NAMES = (*TYPED_NAMES, "anything", "untyped")
AWKWARD_NAMES = ("json", "model_config", "_private", "schema", "later")
FLOWS = {"typed": typed_call, "awkward": awkward}

_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text()
    | st.text(alphabet=st.characters(categories=["Cs", "Cc"]), max_size=3)  # surrogates, NUL
    | st.binary(max_size=8)
    | st.datetimes()
    | st.timedeltas()
    | st.builds(Opaque)
    | st.sampled_from([math.nan, math.inf, 1j, Ellipsis, object, frozenset({1}), (1, "a")])
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
        | st.tuples(inner, inner)
        | st.sets(st.integers(), max_size=3)
    ),
    max_leaves=6,
)


#: Values that often fit each parameter (so that many calls run, not only refusals).
_fitting = {
    "n": st.integers() | st.sampled_from(["12", 3.0, True]),
    "x": st.floats() | st.integers() | st.sampled_from(["1.5", "nan", "-inf"]),
    "s": st.text(),
    "tags": st.lists(st.text(max_size=4), max_size=3) | st.tuples(st.text(max_size=4)),
    "d": st.dictionaries(st.text(max_size=4), _values, max_size=3),
    "flag": st.booleans() | st.sampled_from(["yes", "off", 0, 1]),
    "when": st.datetimes() | st.sampled_from(["2024-01-01", "2024-01-01T10:00:00+02:00", 0]),
    "note": st.none() | st.text(),
    "anything": _values,
    "untyped": _values,
}


def flow_calls() -> st.SearchStrategy[tuple[str, list[Any], dict[str, Any]]]:
    """A flow of :data:`FLOWS`, positional and keyword arguments, unknown names included."""
    names = st.sampled_from(PARAMETER_NAMES) | st.text(min_size=1, max_size=5)
    fitting = st.fixed_dictionaries({}, optional=_fitting)
    wild = st.tuples(st.lists(_values, max_size=2), st.dictionaries(names, _values, max_size=3))
    awkward_kwargs = st.dictionaries(st.sampled_from(AWKWARD_NAMES), _values, max_size=3)
    return (
        fitting.map(lambda kwargs: ("typed", [], kwargs))
        | wild.map(lambda p: ("typed", list(p[0]), p[1]))
        | awkward_kwargs.map(lambda kwargs: ("awkward", [], kwargs))
        | st.fixed_dictionaries(
            {}, optional={"json": st.integers(), "schema": st.lists(st.integers(), max_size=2)}
        ).map(lambda kwargs: ("awkward", [], kwargs))
    )


def check_flow_call(target: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """Run flow ``target`` of :data:`FLOWS`: it completes, or refuses naming a parameter."""
    state: State = FLOWS[target](*args, return_state=True, **kwargs)
    if state.is_completed():
        return "accepted"
    if not isinstance(state.data, ParameterValidationError):
        raise WrongAnswer(f"run ended {state.type.value}: {state.message!r:.300}")
    exc = state.data
    _one_clear_line(exc, f"parameter {exc.parameter!r}")
    if exc.parameter not in {*PARAMETER_NAMES, *AWKWARD_NAMES, *kwargs, "(arguments)"}:
        raise WrongAnswer(f"refused naming {exc.parameter!r}, not a parameter given")
    return "refused"


# -- family 4: names ----------------------------------------------------------

_names = st.none() | st.text() | st.sampled_from(["", " ", "a" * 10_000, "a/b:c", "\ud800", "\x00"])
_templates = (
    st.none()
    | st.text()
    | st.text().map(lambda t: "{x" + t + "}")
    | st.sampled_from(
        [
            "{",
            "}",
            "{}",
            "{0}",
            "{x.__class__}",
            "{x!r:>10}",
            "{x[0]}",
            "{x.nope}",
            "{y}",
            "{x:d}",
            "{x:%Y}",
            "{x!z}",
            "{x:{x}}",
            "{x:>{x}}",
            "{{x}}",
            "{x:99999999999}",
            "{x:.2f}",
            "x" * 10_000 + "{x}",
            "{x}\ud800",
        ]
    )
)
_arguments = (
    st.integers()
    | st.text(max_size=5)
    | st.none()
    | st.floats()
    | st.lists(st.integers(), max_size=2)
)


def name_options() -> st.SearchStrategy[dict[str, Any]]:
    """Names, templates and the one argument of the flow they decorate."""
    return st.fixed_dictionaries(
        {
            "flow_name": _names,
            "flow_run_name": _templates,
            "task_name": _names,
            "task_run_name": _templates,
            "x": _arguments,
        }
    )


def check_names(
    flow_name: str | None,
    flow_run_name: str | None,
    task_name: str | None,
    task_run_name: str | None,
    x: Any,
) -> str:
    """Decorate with these names: refused at decoration, or the run completes."""
    try:

        @task(name=task_name, task_run_name=task_run_name)
        def echo(x: Any) -> Any:
            return x

        @flow(name=flow_name, flow_run_name=flow_run_name, cluster="sync")
        def named(x: Any) -> Any:
            return echo(x)

    except DaskflowError as exc:
        _one_clear_line(exc)
        return "refused"
    state = named(x, return_state=True)
    if not state.is_completed():
        raise WrongAnswer(f"a name broke the run: {state.type.value} {state.message!r:.300}")
    return "accepted"


# -- runs are recorded --------------------------------------------------------


class RunsCreated(Observer):
    """Collects the ids of the top-level flow runs created while it listens."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def on_events(self, events: Any, **kwargs: Any) -> None:
        self.ids.extend(
            e.flow_run_id for e in events if isinstance(e, FlowRunCreated) and not _nested(e)
        )


def _nested(event: Event) -> bool:
    return getattr(event, "parent_flow_run_id", None) is not None


def confirm_recorded(ids: list[str]) -> list[str]:
    """The ids among ``ids`` the run store does not hold as ended flow runs with ended task runs."""
    import daskflow

    bus.flush()
    lost = []
    for run_id in ids:
        try:
            run = daskflow.get_run(run_id)
        except DaskflowError:
            lost.append(run_id)
            continue
        ended = run.state.is_final() and all(t.state.is_final() for t in run.task_runs)
        if not ended or not isinstance(run.name, str):
            lost.append(run_id)
    return lost


# -- the counts -------------------------------------------------------------

FAMILIES: dict[str, tuple[Callable[[], st.SearchStrategy[Any]], Callable[[Any], str]]] = {
    "CLI parameters": (cli_pairs, check_cli_pair),
    "cron, intervals, timezones": (schedules, check_schedule),
    "flow parameters": (flow_calls, lambda call: check_flow_call(*call)),
    "names": (name_options, lambda options: check_names(**options)),
}


def fuzz_table(n: int, *, seed: int | None = 0) -> list[dict[str, Any]]:
    """Run ``n`` generated inputs per family; count how each was answered.

    Columns: ``family``, ``examples``, ``accepted`` (valid input, ran or
    parsed), ``refused`` (a ``DaskflowError``, one line, naming the subject),
    ``other`` (another exception, a wrong message or a run ending wrongly),
    ``lost`` (runs started but not found in the run store), ``answered``
    (the share of examples accepted or refused with nothing lost, in %), and
    ``first_other`` (one example of ``other``). Runs are recorded in the
    configured run store. ``seed``: the same examples for the same seed
    (None: new ones each time).

    Examples
    --------
    >>> for row in fuzz_table(50):  # doctest: +SKIP
    ...     print(row["family"], row["answered"])
    """
    rows = []
    for family, (strategy, check) in FAMILIES.items():
        created = bus.register(RunsCreated())
        try:
            counts, first = _count(strategy(), check, n, seed)
        finally:
            bus.unregister(created)
        lost = len(confirm_recorded(created.ids))  # type: ignore[attr-defined]
        examples = sum(counts.values())
        good = counts["accepted"] + counts["refused"] - lost
        rows.append(
            {
                "family": family,
                "examples": examples,
                "accepted": counts["accepted"],
                "refused": counts["refused"],
                "other": counts["other"],
                "lost": lost,
                "answered": round(100 * good / examples, 1) if examples else 100.0,
                "first_other": first,
            }
        )
    return rows


def _count(
    strategy: st.SearchStrategy[Any], check: Callable[[Any], str], n: int, seed: int | None
) -> tuple[Counter[str], str]:
    """Outcomes of ``check`` over ``n`` examples, and the first unexpected one."""
    counts: Counter[str] = Counter()
    first: list[str] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],  # every example counted once: no shrinking
    )
    @given(strategy)
    def count(example: Any) -> None:
        try:
            counts[check(example)] += 1
        except Exception as exc:
            counts["other"] += 1
            if not first:
                first.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    if seed is not None:
        count = hypothesis.seed(seed)(count)
    count()
    return counts, first[0] if first else ""


if __name__ == "__main__":  # python -m tests.fuzz_inputs [N]
    import sys
    import tempfile

    import dask

    with (
        tempfile.TemporaryDirectory() as folder,
        dask.config.set({"daskflow.store": f"{folder}/fuzz.db", "daskflow.progress": False}),
    ):
        for row in fuzz_table(int(sys.argv[1]) if len(sys.argv) > 1 else 100):
            print(row)
