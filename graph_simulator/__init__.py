"""Dev/test-only simulator of Microsoft Graph (Viva Engage communities) and the managed identity endpoint.

Never deployed and never imported by the app. See docs/graph-simulator.md.
"""

from graph_simulator.identity import FOREIGN_CREDENTIAL_VARIABLES
from graph_simulator.scenarios import CATALOG as SCENARIOS
from graph_simulator.server import GraphSimulator
from graph_simulator.state import SEED_USERS

__all__ = ["FOREIGN_CREDENTIAL_VARIABLES", "SCENARIOS", "SEED_USERS", "GraphSimulator"]
