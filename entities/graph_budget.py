"""The app-wide Graph budget as a Durable entity (one instance, ``graph_budget@viva-engage``).

A thin shell over ``provisioning.budget.Budget``: the entity runs one operation at a time, which is what makes
one budget safe to share between every orchestration of the app. The orchestration passes its own time and
the limits it runs with, so the entity reads no clock and no setting.
"""

from __future__ import annotations

import azure.durable_functions as df

from provisioning.budget import Budget, CallKind

bp = df.Blueprint()


@bp.entity_trigger(context_name="context", entity_name="graph_budget")
def graph_budget(context: df.DurableEntityContext) -> None:
    request = context.get_input() or {}
    limit, window = request.get("limit"), request.get("windowSeconds")
    budget = Budget.from_state(
        context.get_state(lambda: None),
        limit=int(limit) if limit is not None else None,
        window_seconds=float(window) if window is not None else None,
    )
    if context.operation_name == "reserve":
        context.set_result(budget.reserve(float(request["now"]), CallKind(request["kind"])))
    elif context.operation_name == "throttled":
        budget.block_until(float(request["until"]))
    else:
        raise ValueError(f"graph_budget has no operation {context.operation_name!r}")
    context.set_state(budget.to_state())
