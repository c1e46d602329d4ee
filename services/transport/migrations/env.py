from services.common.migrate import run_env
from services.transport.models import metadata

run_env(metadata)
