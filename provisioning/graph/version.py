"""The app's name and version as Graph sees them in ``User-Agent``; a test keeps the version equal to
pyproject.toml's, the single source of truth."""

APP_NAME = "viva-engage-community-provisioner"
APP_VERSION = "0.1.0"
USER_AGENT = f"{APP_NAME}/{APP_VERSION}"
