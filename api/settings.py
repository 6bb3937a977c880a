"""Settings: defaults in code, overridden by a TOML file, overridden by the environment.

The TOML file is named by ``ECOLEDGER_CONFIG``. A table in it prefixes its keys
(``[server] workers = 4`` sets ``server_workers``), and every setting can be given as
``ECOLEDGER_<NAME>`` in the environment (``ECOLEDGER_SERVER_WORKERS=4``).
Secrets (the log key's passphrase) come from the environment only.
"""

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

ENV_PREFIX = "ECOLEDGER_"
PASSPHRASE_ENV = "ECOLEDGER_LOG_KEY_PASSPHRASE"


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    home: Path = Path("instance")
    database_url: str = ""
    origin: str = "ecoledger.local/log"
    server_bind: str = "127.0.0.1:8000"
    server_workers: int = 2
    server_timeout: int = 30
    log_level: str = "INFO"
    entries_page_limit: int = 1000
    scheduler_checkpoint: str = "*/5 * * * *"
    scheduler_expiry: str = "*/10 * * * *"
    scheduler_settlement: str = "30 1 * * *"
    scheduler_clearing: str = "0 17 * * *"
    settlement_grace_days: int = 10
    clearing_overdue_days: int = 5

    @property
    def schedules(self) -> dict[str, str]:
        """Crontab expressions of the scheduled jobs, in Asia/Shanghai."""
        return {name: getattr(self, f"scheduler_{name}") for name in ("checkpoint", "expiry", "settlement", "clearing")}

    @property
    def database(self) -> str:
        """The database URL: ``database_url`` if set, else SQLite in the home directory."""
        return self.database_url or f"sqlite:///{self.home.resolve() / 'ledger.db'}"

    @property
    def log_keys_dir(self) -> Path:
        return self.home / "keys" / "log"

    @property
    def log_key_passphrase(self) -> bytes | None:
        value = os.environ.get(PASSPHRASE_ENV)
        return value.encode() if value else None


def _coerce(name: str, kind: type, value: Any) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise SettingsError(f"setting {name} must be an integer, not {value!r}")
        try:
            return int(value)
        except ValueError:
            raise SettingsError(f"setting {name} must be an integer, not {value!r}") from None
    if kind is Path and isinstance(value, Path):
        return value
    if not isinstance(value, str):
        raise SettingsError(f"setting {name} must be a string, not {value!r}")
    return Path(value) if kind is Path else value


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def load_settings(overrides: Mapping[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file named by ``ECOLEDGER_CONFIG``, then ``ECOLEDGER_*``, then
    ``overrides`` (used by tests and the application factory)."""
    environ = os.environ if environ is None else environ
    kinds = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {}
    if path := environ.get(f"{ENV_PREFIX}CONFIG"):
        try:
            with open(path, "rb") as file:
                document = tomllib.load(file)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read the settings file {path}: {exc}") from None
        for name, value in _flatten(document).items():
            if name not in kinds:
                raise SettingsError(f"unknown setting {name!r} in {path}")
            values[name] = value
    for name in kinds:
        if (value := environ.get(ENV_PREFIX + name.upper())) is not None:
            values[name] = value
    for name, value in (overrides or {}).items():
        if name not in kinds:
            raise SettingsError(f"unknown setting {name!r}")
        values[name] = value
    settings = replace(Settings(), **{n: _coerce(n, kinds[n], v) for n, v in values.items()})
    if settings.server_workers < 1:
        raise SettingsError("setting server_workers must be at least 1")
    return settings
