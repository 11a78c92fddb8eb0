"""End-to-end tests: the app in the dev host against the Graph simulator, over HTTP."""
