"""Entity blueprints: thin shells over plain state in ``provisioning``."""
