"""Activities making the workflow's Graph calls: one thin function per step of ``provisioning.steps``.

Parameters are annotated with classes (``str``, ``list``, ``dict``): the Python worker refuses builtin generic
aliases such as ``dict[str, Any]`` on binding parameters when it loads the app (``FunctionLoadError: ... has
invalid non-type annotation``; azure-functions-durable-python issue #468).
"""

from __future__ import annotations

import asyncio
from typing import Any

import azure.durable_functions as df

from provisioning import graph, steps
from provisioning.logs import log_fields
from provisioning.settings import get_settings
from provisioning.workflow import WorkflowSettings

bp = df.Blueprint()


@bp.activity_trigger(input_name="unused")
def load_workflow_settings(unused: Any) -> dict:
    # Settings are read here, not in the orchestrator: replays must not see a changed environment.
    return WorkflowSettings.from_settings(get_settings()).to_dict()


@bp.activity_trigger(input_name="references", activity=steps.RESOLVE_USERS.name)
def resolve_users(references: list) -> dict:
    return steps.RESOLVE_USERS.run(graph.get_graph_client(), references)


@bp.activity_trigger(input_name="display_name", activity=steps.FIND_COMMUNITIES.name)
def find_communities(display_name: str) -> dict:
    return steps.FIND_COMMUNITIES.run(graph.get_graph_client(), display_name)


@bp.activity_trigger(input_name="request", activity=steps.CREATE_COMMUNITY.name)
@bp.durable_client_input(client_name="client")
async def create_community(request: dict, client: df.DurableOrchestrationClient) -> dict:
    with log_fields(requestId=request["requestId"]):
        # Never POST twice for one attempt, even when the host runs this activity again after a crash.
        if not await steps.claim_create_try(client, request["requestId"], request["tryId"]):
            return {"error": steps.REPEATED_CREATE_ATTEMPT.to_dict()}
        # The Graph client blocks: keep it off the worker's event loop (to_thread carries the log fields).
        return await asyncio.to_thread(steps.CREATE_COMMUNITY.run, graph.get_graph_client(), request)


@bp.activity_trigger(input_name="operation_url", activity=steps.GET_OPERATION_STATUS.name)
def get_operation_status(operation_url: str) -> dict:
    return steps.GET_OPERATION_STATUS.run(graph.get_graph_client(), operation_url)


@bp.activity_trigger(input_name="community_id", activity=steps.GET_COMMUNITY.name)
def get_community(community_id: str) -> dict:
    return steps.GET_COMMUNITY.run(graph.get_graph_client(), community_id)


@bp.activity_trigger(input_name="batch", activity=steps.ADD_MEMBERS.name)
def add_members(batch: dict) -> dict:
    return steps.ADD_MEMBERS.run(graph.get_graph_client(), batch)
