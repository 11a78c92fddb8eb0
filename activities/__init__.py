"""Activity blueprints: thin functions, one per Graph step or notification."""
