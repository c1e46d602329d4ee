"""The transport service (渣土运输): entrypoints only; rules live in `domain.py`, storage in
`store.py`."""

from __future__ import annotations

from eventlet.semaphore import Semaphore

from contracts.envelope import Event
from contracts.errors import InvalidInput
from contracts.http import transport as T
from services.common.batching import consume_batch
from services.common.clock import Clock
from services.common.config import setting
from services.common.db import Database
from services.common.entrypoints import Refusal, event_handler, rpc
from services.common.inputs import load, parse_instant, require_role
from services.common.observability import Observable
from services.common.timers import timer
from services.transport import models
from services.transport.store import TransportRuntime, TransportStore

POSITIONS_QUEUE = "transport.positions"
# The queue's batches are evaluated one at a time, in the order they were consumed: a later batch
# overtaking an earlier one would make the earlier one's points "late" (stored, not evaluated).
# A batch waiting here runs after the previous batch's ingest; its `FOR UPDATE` on the vehicles'
# states then waits for that batch's commit.
_IN_ORDER = Semaphore(1)


class TransportService(Observable):
    name = "transport"

    db = Database(models.metadata)
    rt = TransportRuntime()
    clock = Clock()

    def _store(self) -> TransportStore:
        return TransportStore(self.db, self.rt)

    # registry -----------------------------------------------------------------------------------
    @rpc
    def add_company(self, caller: dict, body: dict) -> dict:
        require_role(caller, T.ADMIN_ROLES, "register companies")
        return self._store().add_company(load(T.CompanySchema, body))

    @rpc
    def register_vehicle(self, caller: dict, body: dict) -> dict:
        require_role(caller, T.ADMIN_ROLES, "register vehicles")
        return self._store().register_vehicle(load(T.VehicleSchema, body))

    @rpc
    def register_site(self, caller: dict, body: dict) -> dict:
        require_role(caller, T.ADMIN_ROLES, "register sites")
        return self._store().register_site(load(T.SiteSchema, body))

    @rpc
    def issue_permit(self, caller: dict, body: dict) -> dict:
        require_role(caller, T.ADMIN_ROLES, "issue permits")
        return self._store().issue_permit(load(T.PermitSchema, body))

    @rpc
    def revoke_permit(self, caller: dict, permit_id: str, body: dict) -> dict:
        require_role(caller, T.ADMIN_ROLES, "revoke permits")
        return self._store().revoke_permit(permit_id, load(T.RevokeSchema, body)["reason"])

    @rpc
    def list_companies(self, caller: dict) -> dict:
        require_role(caller, T.READ_ROLES, "see transport companies")
        return self._store().list_companies()

    @rpc
    def get_permit(self, caller: dict, permit_id: str) -> dict:
        require_role(caller, T.READ_ROLES, "read permits")
        return self._store().permit_view(permit_id)

    # positions ----------------------------------------------------------------------------------
    @rpc
    def ingest(self, caller: dict, batch: dict) -> dict:
        """A batch of positions; bad points are refused one by one, good ones kept."""
        require_role(caller, T.INGEST_ROLES, "send positions")
        body = load(T.PositionBatchSchema, batch)
        return self._store().ingest(body["positions"])

    # up to 200 ms for a batch to fill: a trickle of device messages then still makes batches
    # worth their fixed cost (bench/RESULTS.md: 1,916 → 3,149 positions/s kept at 4,000/s paced)
    @consume_batch(POSITIONS_QUEUE, max_batch=500, max_wait=0.2)
    def consume_positions(self, bodies: list[dict]) -> list:
        """Device gateways: one position (or `{"positions": [...]}`) per message; a message
        whose points are all bad is parked with the reasons."""
        raws, owner = [], []
        for i, body in enumerate(bodies):
            items = body.get("positions") if "positions" in body else [body]
            if not isinstance(items, list):
                items = [items]
            raws += items
            owner += [i] * len(items)
        with _IN_ORDER:
            result = self._store().ingest(raws)
        reasons: dict[int, list[str]] = {}
        for r in result["refused"]:
            reasons.setdefault(owner[r["index"]], []).append(r["reason"])
        counts = [owner.count(i) for i in range(len(bodies))] if reasons else []
        return [Refusal("invalid", "; ".join(reasons[i]))
                if i in reasons and len(reasons[i]) == counts[i] else None
                for i in range(len(bodies))]

    @rpc
    def track(self, caller: dict, plate: str, query: dict) -> dict:
        require_role(caller, T.READ_ROLES, "read tracks")
        q = load(T.TrackQuerySchema, query)
        if q["to"] <= q["from_"]:
            raise InvalidInput("`to` must be after `from`", {"to": ["not after from"]})
        return self._store().track(plate, q["from_"], q["to"])

    @rpc
    def latest_positions(self, bbox: list[float], since: str, until: str) -> list[dict]:
        """Each truck's latest position in a lon/lat box (service to service: joint operations)."""
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(isinstance(v, int | float) for v in bbox)):
            raise InvalidInput("bbox is [min_lon, min_lat, max_lon, max_lat]", {"bbox": [bbox]})
        return self._store().latest_positions(bbox, parse_instant(since), parse_instant(until))

    @rpc
    def list_alerts(self, caller: dict, query: dict) -> dict:
        require_role(caller, T.READ_ROLES, "read alerts")
        return self._store().list_alerts(load(T.AlertListQuerySchema, query))

    @rpc
    def list_trips(self, caller: dict, query: dict) -> dict:
        require_role(caller, T.READ_ROLES, "read trips")
        return self._store().list_trips(load(T.TripListQuerySchema, query))

    # partners' permits ------------------------------------------------------------------------
    @event_handler("bridge", "transport.permit_issued")
    def on_permit_issued(self, event: Event) -> None:
        self._store().receive_permit(event)

    @event_handler("bridge", "transport.alert_raised")
    def on_partner_alert(self, event: Event) -> None:
        """A partner city's alert on a truck whose permit we issued, or on a truck in our city."""
        self._store().receive_alert(event)

    # retention ---------------------------------------------------------------------------------
    @timer("TRANSPORT_RETENTION_SCAN_SECONDS", 3600.0)
    def retention(self) -> None:
        self._store().drop_old_partitions(self.clock.now(),
                                          int(setting("TRANSPORT_RETENTION_DAYS", 90)))

    @rpc
    def retention_at(self, at: str) -> list[str]:
        """Tests only (`CLOCK_CONTROL`): drop partitions as of another instant."""
        return self._store().drop_old_partitions(
            self.clock.instant(at, "retention"), int(setting("TRANSPORT_RETENTION_DAYS", 90)))
