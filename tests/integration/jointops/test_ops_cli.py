"""`liandong ops plan|invite|status|report` as a coordinator uses them, against a running city."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from test_joint_operation import COORDINATOR, plan_body, seen_in

from liandong import cli

pytestmark = pytest.mark.integration


def run(capsys, platform, *argv) -> tuple[int, str, str]:
    code = cli.main(["ops", *argv[:1], "--city", "taicang", "--url", platform.url("taicang"),
                     "--key", platform.key(*COORDINATOR), *argv[1:]])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_coordinator_runs_an_operation_from_the_command_line(platform, capsys, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    plan = plan_body(now - timedelta(minutes=10), now + timedelta(hours=3), partners=["jiading"])
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, allow_unicode=True), encoding="utf-8")

    code, out, _ = run(capsys, platform, "plan", str(path))
    assert code == 0, out
    op_id = re.search(r"id ([0-9a-f-]{36})", out).group(1)
    assert "status draft" in out and "SHORT" in out

    # a step out of order is refused with the API's reason, and the exit code says so
    code, _, err = run(capsys, platform, "start", op_id)
    assert code == 1 and "refused" in err and "draft" in err

    assert run(capsys, platform, "invite", op_id)[0] == 0
    from support import ApiClient
    jiading = ApiClient(platform.url("jiading"), platform.key(
        "jiading", "Test jiading bureau 城管局", "bureau"))
    seen_in(jiading, op_id, lambda o: o["status"] == "invited", "the invitation in Jiading")
    code, out, _ = run(capsys, platform, "status", op_id)
    assert code == 0 and "invitation jiading" in out and "pending" in out

    code, out, _ = run(capsys, platform, "status")
    assert code == 0 and op_id in out

    for step in ("confirm", "start", "complete"):
        code, out, err = run(capsys, platform, step, op_id)
        assert code == 0, err
    code, out, _ = run(capsys, platform, "report", op_id, "--final", "--format", "csv")
    assert code == 0 and out.startswith("section,key,reports")
    code, out, _ = run(capsys, platform, "status", op_id, "--json")
    assert code == 0 and '"status": "reported"' in out
