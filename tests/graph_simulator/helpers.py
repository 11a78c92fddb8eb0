"""Helpers for the simulator's own tests."""

from __future__ import annotations

import base64
import json
from typing import Any

import requests

from graph_simulator import SEED_USERS, GraphSimulator

OWNER_ID = SEED_USERS[0]["id"]


def owner_bind(user_id: str = OWNER_ID, version: str = "v1.0") -> str:
    return f"https://graph.microsoft.com/{version}/users/{user_id}"


def community_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "displayName": "Financial Advice for Software Engineers",
        "description": "A community where financial advisors discuss advice for their clients.",
        "privacy": "public",
        "owners@odata.bind": [owner_bind()],
    }
    body.update(overrides)
    return body


def decode_id(value: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    return decoded


def get_token(sim: GraphSimulator, resource: str = "https://graph.microsoft.com") -> str:
    response = requests.get(
        sim.identity_endpoint,
        params={"api-version": "2019-08-01", "resource": resource},
        headers={"X-IDENTITY-HEADER": sim.identity_header},
        timeout=5,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token
