"""HTTP answers shared by the HTTP blueprints: ``HttpAnswer`` to ``func.HttpResponse``, problems, 503s."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from provisioning.problems import PROBLEM_CONTENT_TYPE, ProblemCode, problem
from provisioning.status import HttpAnswer

# Retry-After of a 503 (start or cancel not delivered); short because that is usually a storage hiccup.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def respond(answer: HttpAnswer) -> func.HttpResponse:
    return func.HttpResponse(
        body=answer.body_bytes(),
        status_code=answer.status_code,
        headers=answer.headers,
        mimetype=answer.content_type,
        charset="utf-8",
    )


def problem_answer(body: dict[str, Any]) -> HttpAnswer:
    return HttpAnswer(body["status"], body, {"Cache-Control": "no-store"}, PROBLEM_CONTENT_TYPE)


def retry_later(detail: str) -> HttpAnswer:
    answer = problem_answer(problem(ProblemCode.SERVICE_UNAVAILABLE, detail))
    answer.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return answer
