"""Failover in Faust's internals: a static group member leaves its group on a clean stop (so
a scale-down rebalances at once) and stays on every other leave path; standby copies are
written record by record."""

import asyncio
import inspect

from aiokafka.consumer.group_coordinator import GroupCoordinator

from streams.app import app
from streams.faust_patches import leaving_on_close


class Coordinator:
    """The three names of aiokafka's GroupCoordinator that the patch uses."""

    def __init__(self) -> None:
        self._group_instance_id: str | None = "127.0.0.1-6066"
        self._closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.left_as: list[str | None] = []

    async def _maybe_leave_group(self) -> None:
        self.left_as.append(self._group_instance_id)


async def test_on_close_the_leave_request_is_sent_as_for_a_dynamic_member() -> None:
    coordinator = Coordinator()
    leave = leaving_on_close(coordinator)
    await leave()
    coordinator._closing.set_result(None)
    await leave()
    assert coordinator.left_as == ["127.0.0.1-6066", None]
    assert coordinator._group_instance_id == "127.0.0.1-6066"


def test_aiokafka_still_skips_leaving_for_static_members_and_leaves_on_close() -> None:
    leave = inspect.getsource(GroupCoordinator._maybe_leave_group)
    assert "self._group_instance_id is None" in leave
    assert "await self._maybe_leave_group()" in inspect.getsource(GroupCoordinator.close)
    assert "self._closing.set_result(None)" in inspect.getsource(GroupCoordinator.close)


def test_the_worker_joins_as_a_static_member_with_the_session_settings() -> None:
    assert app.conf.consumer_group_instance_id == "127.0.0.1-6066"
    assert app.conf.broker_session_timeout == 20.0
    assert app.conf.broker_heartbeat_interval == 1.0


def test_every_table_writes_each_standby_record_at_once() -> None:
    import agents.write_model  # noqa: F401  (declares the write model's tables)
    from tables.storage import VIEW_TABLES

    assert VIEW_TABLES and all(t.standby_buffer_size == 1 for t in VIEW_TABLES.values())
    assert all(table.standby_buffer_size == 1 for table in app.tables.values())


def test_faust_still_buffers_standby_records_by_the_tables_standby_buffer_size() -> None:
    from faust.tables.recovery import Recovery

    slurp = inspect.getsource(Recovery._slurp_changelogs.fun)
    assert "bufsize = buffer_sizes[tp] = table.standby_buffer_size" in slurp
    assert "if len(buf) >= bufsize" in slurp
