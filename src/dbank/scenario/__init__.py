"""The classic scenario files: reading every input variant, the reference model, the output.

A scenario file is the input of the classic "customers and branches over gRPC" bank
assignments: branch entries that all hold one shared account with the same opening
balance, and customer entries whose deposits, withdraws and queries run one after another.
Its spelling changed between course years (P1 classic, P1 Fall 2023, P2 Fall 2023, P3
classic, P3 Fall 2023); ``load_scenario`` reads them all into one typed, frozen
``Scenario``, and ``build_output`` writes results back in the input's own variant.

``run_model`` is the sequential reference model of the semantics (the oracle the real
runner is tested against). Reading, the model and the output are pure: they start nothing
and know nothing of gRPC, branches or storage. ``run_scenario`` (``_runner``, on
``dbank.hosting``) is the one part that does: it plays the scenario on real branches,
for ``dbank run``.

    scenario = load_scenario(Path("input.json"))          # raises ScenarioError
    text = render_output(build_output(scenario, run_model(scenario)))
    text = render_output(build_output(scenario, run_scenario(scenario)))  # real branches

``trace_scenario`` is the same run recording every process's Lamport clock (P2), and
``fall_2023_trace`` and ``classic_trace`` write what it recorded in the P2 shapes.
"""

from dbank.hosting import RunError
from dbank.scenario._errors import ScenarioError, json_path
from dbank.scenario._input import load_scenario
from dbank.scenario._model import run_model
from dbank.scenario._output import JsonObject, build_output, render_output
from dbank.scenario._results import EventResult, Result
from dbank.scenario._runner import ACCOUNT_ID, run_scenario
from dbank.scenario._scenario import Customer, Event, Interface, Scenario, Variant
from dbank.scenario._trace_output import Fall2023Trace, classic_trace, fall_2023_trace
from dbank.scenario._trace_run import check_trace_dir, trace_scenario, write_trace_parts

__all__ = [
    "ACCOUNT_ID",
    "Customer",
    "Event",
    "EventResult",
    "Fall2023Trace",
    "Interface",
    "JsonObject",
    "Result",
    "RunError",
    "Scenario",
    "ScenarioError",
    "Variant",
    "build_output",
    "check_trace_dir",
    "classic_trace",
    "fall_2023_trace",
    "json_path",
    "load_scenario",
    "render_output",
    "run_model",
    "run_scenario",
    "trace_scenario",
    "write_trace_parts",
]
