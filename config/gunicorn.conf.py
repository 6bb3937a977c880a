"""gunicorn configuration, for running the service without the `ecoledger serve` wrapper:

    gunicorn -c config/gunicorn.conf.py 'api:create_app()'

It reads the same settings (ECOLEDGER_CONFIG, ECOLEDGER_* variables) as `ecoledger serve`.
Run `ecoledger init` once first: this entry point does not create the database or the log key.
"""

from api.serve import gunicorn_options
from api.settings import load_settings

globals().update(gunicorn_options(load_settings()))
