from services.common.migrate import run_env
from services.supervision.models import metadata

run_env(metadata)
