"""Activities making the workflow's Graph calls: one thin function per step (see ``provisioning.steps``)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from provisioning import steps
from provisioning.graph import get_graph_client
from provisioning.settings import get_settings
from provisioning.workflow import WorkflowSettings

bp = df.Blueprint()


@bp.activity_trigger(input_name="unused")
def load_workflow_settings(unused: Any) -> dict[str, int]:
    # Settings are read here, not in the orchestrator: replays must not see a changed environment.
    return WorkflowSettings.from_settings(get_settings()).to_dict()


@bp.activity_trigger(input_name="references")
def resolve_users(references: list[str]) -> dict[str, Any]:
    return steps.resolve_users(get_graph_client(), references)


@bp.activity_trigger(input_name="display_name")
def find_communities(display_name: str) -> dict[str, Any]:
    return steps.find_communities(get_graph_client(), display_name)


@bp.activity_trigger(input_name="request")
def create_community(request: dict[str, Any]) -> dict[str, Any]:
    return steps.create_community(get_graph_client(), request)


@bp.activity_trigger(input_name="operation_url")
def get_operation_status(operation_url: str) -> dict[str, Any]:
    return steps.get_operation(get_graph_client(), operation_url)


@bp.activity_trigger(input_name="community_id")
def get_community(community_id: str) -> dict[str, Any]:
    return steps.get_community(get_graph_client(), community_id)


@bp.activity_trigger(input_name="batch")
def add_members(batch: dict[str, Any]) -> dict[str, Any]:
    return steps.add_members(get_graph_client(), batch["groupId"], batch["userIds"])
