"""A rep's outlet scope is read once and kept while nothing of the rep's changed (without a
store command while the sequence's head has not moved), grows by what the rep's new records
point at without reading its history again, and is right again after any change of its records
(from this or another instance)."""

from __future__ import annotations

from pymongo import monitoring

from service.domain.record_types import RecordType
from service.services import Services
from service.settings import Settings
from service.store import sequence
from service.store.database import Store, connect
from service.store.outlet_scopes import OutletScopes
from tests.factories import change

VISIT, OUTLET = RecordType.VISIT, RecordType.OUTLET


class ScopeReads(monitoring.CommandListener):
    """Counts full reads of a rep's records (``{owner}`` without a ``seq`` bound), and all commands."""

    def __init__(self) -> None:
        self.count = 0
        self.commands = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        query = event.command.get("filter", {})
        self.count += event.command_name == "find" and "owner" in query and "seq" not in query
        self.commands += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_the_scope_is_kept_while_unchanged_and_follows_every_change(
    services: Services, settings: Settings, embedded: bool
):
    for outlet in ("o1", "o2", "o3"):
        fields = {"name": outlet, "repIds": ["rep1", "rep2"]}  # the reps may visit them
        await services.sync.write_record(OUTLET, outlet, fields, None, user_id="hq")
    push = services.sync.push
    await push([change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})], device_id="d1", rep_id="rep1")
    reads = ScopeReads()
    assert settings.mongodb_uri is not None
    store: Store = connect(settings.mongodb_uri, settings.database, embedded=embedded, event_listeners=[reads])
    try:
        scopes = OutletScopes(store)

        async def scope() -> frozenset[str]:
            return await scopes.of("rep1", await sequence.current(store))

        assert await scope() == {"OUTLET:o1"}
        head = await sequence.current(store)
        commands = reads.commands
        assert await scopes.of("rep1", head) == {"OUTLET:o1"}
        assert (reads.count, reads.commands) == (1, commands)  # the second time from what it kept, unasked
        await push([change(VISIT, "v2", {"outletId": "o2", "status": "PLANNED"})], device_id="d1", rep_id="rep1")
        await push([change(VISIT, "v3", {"outletId": "o2", "status": "PLANNED"})], device_id="d1", rep_id="rep1")
        assert await scope() == {"OUTLET:o1", "OUTLET:o2"}
        assert reads.count == 1  # new records: what they point at is added, the history is not read again
        edit = change(VISIT, "v1", {"outletId": "o3", "status": "PLANNED"}, base_version=1)
        await push([edit], device_id="d1", rep_id="rep1")  # v1 moves from o1 to o3
        assert await scope() == {"OUTLET:o2", "OUTLET:o3"}
        assert reads.count == 2  # an existing record changed: read whole
        await push([change(VISIT, "w1", {"outletId": "o1", "status": "PLANNED"})], device_id="d2", rep_id="rep2")
        assert await scope() == {"OUTLET:o2", "OUTLET:o3"}  # another rep's change: still kept
        assert reads.count == 2
    finally:
        await store.close()
