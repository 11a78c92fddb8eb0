"""The composed app registers exactly the activities the orchestrator calls, under the names it calls them
(activity names are strings, so a rename would otherwise only show up at run time)."""

from __future__ import annotations

from devhost.indexing import index_app, load_app
from orchestrators import provision
from provisioning import steps
from provisioning.models import ORCHESTRATOR_NAME

CALLED_ACTIVITIES = {
    provision.LOAD_SETTINGS,
    steps.RESOLVE_USERS.name,
    steps.FIND_COMMUNITIES.name,
    steps.CREATE_COMMUNITY.name,
    steps.GET_OPERATION_STATUS.name,
    steps.GET_COMMUNITY.name,
    steps.ADD_MEMBERS.name,
    provision.DELIVER_CALLBACK,
    provision.PUBLISH_RESULT,
}


def test_app_registers_the_orchestrator_and_every_activity_it_calls() -> None:
    index = index_app(load_app("function_app:app"))
    assert set(index.orchestrators) == {ORCHESTRATOR_NAME, steps.CREATE_ATTEMPT_MARKER}
    assert set(index.activities) == CALLED_ACTIVITIES


def test_result_message_goes_through_a_queue_output_binding() -> None:
    index = index_app(load_app("function_app:app"))
    bindings = index.activities[provision.PUBLISH_RESULT].bindings
    [queue_output] = [binding for binding in bindings if binding["type"] == "queue"]
    assert queue_output["direction"] == "OUT"
    assert queue_output["queueName"] == "%RESULTS_QUEUE%"
    assert queue_output["connection"] == "AzureWebJobsStorage"
