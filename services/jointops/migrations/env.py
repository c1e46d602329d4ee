from services.common.migrate import run_env
from services.jointops.models import metadata

run_env(metadata)
