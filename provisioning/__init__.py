"""The provisioner's domain logic: plain Python, no Azure Functions imports."""

import logging

# urllib3 logs whole request lines at DEBUG, query strings included (the signature of a Logic Apps callback
# URL, Graph filters with display names). Whatever level the host runs the app's loggers at, never write them.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)
