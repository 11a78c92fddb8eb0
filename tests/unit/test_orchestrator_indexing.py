"""The composed app registers exactly the activities and entities the orchestrators call, under the names they
call them (names are strings, so a rename would otherwise only show up at run time)."""

from __future__ import annotations

from devhost.indexing import index_app, load_app
from orchestrators import batch, notify, provision
from provisioning import steps
from provisioning.batch_workflow import BATCH_ORCHESTRATOR
from provisioning.models import ORCHESTRATOR_NAME

CALLED_ACTIVITIES = {
    provision.LOAD_SETTINGS,
    steps.RESOLVE_USERS.name,
    steps.FIND_COMMUNITIES.name,
    steps.CREATE_COMMUNITY.name,
    steps.GET_OPERATION_STATUS.name,
    steps.GET_COMMUNITY.name,
    steps.ADD_MEMBERS.name,
    notify.DELIVER_CALLBACK,
    notify.PUBLISH_RESULT,
    batch.START_BATCH_ITEMS,
    batch.CHECK_BATCH_ITEMS,
    batch.CANCEL_BATCH_ITEMS,
}


def test_app_registers_the_orchestrator_and_every_activity_it_calls() -> None:
    index = index_app(load_app("function_app:app"))
    assert set(index.orchestrators) == {ORCHESTRATOR_NAME, BATCH_ORCHESTRATOR, steps.CREATE_ATTEMPT_MARKER}
    assert [fn.trigger.get("entityName") or fn.name for fn in index.of_type("entityTrigger")] == [
        provision.BUDGET_ENTITY.name
    ]
    assert set(index.activities) == CALLED_ACTIVITIES


def test_result_message_goes_through_a_queue_output_binding() -> None:
    index = index_app(load_app("function_app:app"))
    bindings = index.activities[notify.PUBLISH_RESULT].bindings
    [queue_output] = [binding for binding in bindings if binding["type"] == "queue"]
    assert queue_output["direction"] == "OUT"
    assert queue_output["queueName"] == "%RESULTS_QUEUE%"
    assert queue_output["connection"] == "AzureWebJobsStorage"
