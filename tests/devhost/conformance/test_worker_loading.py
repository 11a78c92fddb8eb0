"""The dev host refuses exactly the apps the Python worker refuses: it indexes through the worker library
(`azure_functions_runtime`, `Registry.add_indexed_function`), and this catalogue pins the verdicts on the
annotation forms an app is likely to use (builtin generic aliases are refused on Python 3.11: the library's
`typing_inspect.is_generic_type` does not recognise `types.GenericAlias`; azure-functions-durable-python
issue #468)."""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure_functions_runtime.bindings import meta as worker_bindings
from azure_functions_runtime.functions import FunctionLoadError, Registry

from devhost import rpc
from devhost.indexing import IndexingError, index_app, load_app

ACCEPTED = "accepted"


def activity_app(annotation: Any) -> df.DFApp:
    app = df.DFApp()

    def handler(payload):
        return payload

    if annotation is not None:
        handler.__annotations__ = {"payload": annotation}
    app.activity_trigger(input_name="payload")(app.function_name("handler")(handler))
    return app


def queue_output_app(annotation: Any) -> func.FunctionApp:
    app = func.FunctionApp()

    def handler(msg: func.QueueMessage, out) -> None:
        return None

    handler.__annotations__ = {"msg": func.QueueMessage, "out": annotation, "return": None}
    decorated = app.queue_output(arg_name="out", queue_name="out", connection="AzureWebJobsStorage")(handler)
    app.queue_trigger(arg_name="msg", queue_name="in", connection="AzureWebJobsStorage")(decorated)
    return app


# (label, app factory, verdict): ACCEPTED or a part of the worker's FunctionLoadError message.
CATALOGUE: list[tuple[str, Callable[[], Any], str]] = [
    (
        "dict[str, Any]",
        lambda: activity_app(dict[str, Any]),
        "invalid non-type annotation dict[str, typing.Any]",
    ),
    ("list[str]", lambda: activity_app(list[str]), "invalid non-type annotation list[str]"),
    ("tuple[int, ...]", lambda: activity_app(tuple[int, ...]), "invalid non-type annotation tuple[int, ...]"),
    ("typing.Dict[str, Any]", lambda: activity_app(typing.Dict[str, Any]), ACCEPTED),  # noqa: UP006
    ("typing.List[str]", lambda: activity_app(typing.List[str]), ACCEPTED),  # noqa: UP006
    ("typing.Any", lambda: activity_app(Any), ACCEPTED),
    ("dict", lambda: activity_app(dict), ACCEPTED),
    ("str", lambda: activity_app(str), ACCEPTED),
    ("a class", lambda: activity_app(rpc.RpcHttp), ACCEPTED),
    ("no annotation", lambda: activity_app(None), ACCEPTED),
    ("str | None", lambda: activity_app(str | None), "invalid non-type annotation str | None"),
    ("func.Out[str]", lambda: queue_output_app(func.Out[str]), ACCEPTED),
    ("func.Out[typing.List[str]]", lambda: queue_output_app(func.Out[typing.List[str]]), ACCEPTED),  # noqa: UP006
    ("str on an output", lambda: queue_output_app(str), 'declared to have the "out" direction'),
]


def library_verdict(app: Any) -> str:
    """What the worker library itself says, without the dev host."""
    worker_bindings.load_binding_registry()
    registry = Registry()
    try:
        for function in app.get_functions():
            registry.add_indexed_function(function, protos=rpc)
    except FunctionLoadError as exc:
        return str(exc)
    finally:
        app.functions_bindings = None
    return ACCEPTED


@pytest.mark.parametrize(("label", "factory", "verdict"), CATALOGUE, ids=[row[0] for row in CATALOGUE])
def test_the_dev_host_gives_the_workers_verdict(label: str, factory: Callable[[], Any], verdict: str) -> None:
    expected = library_verdict(factory())
    assert expected == ACCEPTED if verdict == ACCEPTED else verdict in expected, expected
    if expected == ACCEPTED:
        index_app(factory())
    else:
        with pytest.raises(IndexingError) as refused:
            index_app(factory())
        assert str(refused.value) == f"Worker failed to index functions: FunctionLoadError: {expected}"


def test_the_app_loads_under_the_worker_library() -> None:
    app = load_app("function_app:app")
    assert library_verdict(app) == ACCEPTED
    index = index_app(app)
    assert {fn.trigger_type for fn in index.functions} == {
        "httpTrigger",
        "queueTrigger",
        "orchestrationTrigger",
        "activityTrigger",
        "entityTrigger",
    }


def test_the_library_runs_on_this_python_although_it_declares_3_13() -> None:
    # Installed with --ignore-requires-python for development only: its load-time checks use nothing newer.
    assert sys.version_info[:2] == (3, 11)
    assert library_verdict(activity_app(list[str])).endswith("invalid non-type annotation list[str]")
