from services.common.migrate import run_env
from services.leads.models import metadata

run_env(metadata)
