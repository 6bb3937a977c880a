"""The HTTP service: the application factory and its blueprints."""

from typing import Any, Mapping

from flask import Flask

from api import cli, storage
from api.problems import LedgerApi
from api.settings import load_settings


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application. ``test_config`` overrides settings (see :mod:`api.settings`)."""
    app = Flask(__name__)
    settings = load_settings(test_config)
    app.config.update(
        ECOLEDGER=settings,
        API_TITLE="Chuan–Yu eco-rights ledger",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_REDOC_PATH="/docs",
        OPENAPI_REDOC_URL="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    storage.init_app(app)
    cli.init_app(app)

    from api import commands, compensation, export, log, registry

    api = LedgerApi(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearerAuth": []}]
    api.register_blueprint(log.blp)
    api.register_blueprint(commands.blp)
    api.register_blueprint(registry.blp)
    api.register_blueprint(compensation.blp)
    api.register_blueprint(export.blp)
    return app
