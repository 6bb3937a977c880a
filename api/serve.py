"""Running the service under gunicorn, from ``ecoledger serve`` or ``gunicorn -c config/gunicorn.conf.py``."""

from typing import Any

from gunicorn.app.base import BaseApplication

from api.logs import logging_config
from api.settings import Settings


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": settings.server_bind,
        "workers": settings.server_workers,
        "timeout": settings.server_timeout,
        "worker_class": "sync",
        "preload_app": False,  # every worker opens its own database connections
        "accesslog": "-",
        "control_socket_disable": True,  # a per-user socket path would be shared between instances
        "logconfig_dict": logging_config(settings.log_level),
    }


class GunicornServer(BaseApplication):
    def __init__(self, settings: Settings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name, value in gunicorn_options(self.settings).items():
            self.cfg.set(name, value)

    def load(self):
        from api import create_app

        return create_app()
