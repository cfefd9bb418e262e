"""The faults, each a function of a running scenario, and the list of scenarios."""

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.settings import Settings
from tests.faults.harness import PARTITIONS, Run, Scenario, until
from tests.integration.cluster import Worker
from tests.integration.test_dead_letters import GARBAGE, TOPICS


def session_timeout(run: Run) -> float:
    """How long the group waits for a silent member of this run (SHOPSTREAM_SESSION_TIMEOUT)."""
    configured = run.scenario.settings.get("SESSION_TIMEOUT")
    return float(configured) if configured else Settings.from_env().session_timeout


async def kill_twice(run: Run) -> None:
    """kill -9 a worker mid-load, restart it, and kill it again while it recovers."""
    await run.until_sent(0.3)
    victim = run.workers[-1]
    victim.kill()
    run.fault("first kill")
    logged = victim.log_path.stat().st_size
    victim.start()
    await until_logged(victim, logged, "Setting newly assigned partitions")
    victim.kill()
    run.fault("kill during recovery")
    victim.start()


async def until_logged(worker: Worker, offset: int, text: str, timeout: float = 180.0) -> None:
    """Until the worker's log, past `offset`, has `text`: say, it got partitions to recover."""
    async def logged() -> bool:
        with worker.log_path.open("rb") as log:
            log.seek(offset)
            return text.encode() in log.read()
    await until(logged, timeout, interval=0.1)


async def wipe_state(run: Run) -> None:
    """kill -9 a worker, delete its RocksDB state, start it: it restores from the changelogs."""
    await run.until_sent(0.4)
    victim = run.workers[-1]
    victim.kill()
    victim.wipe()
    run.fault("kill and wipe")
    victim.start()


async def scale(run: Run) -> None:
    """1 -> 2 -> 3 -> 1 workers under load."""
    await run.until_sent(0.15)
    run.add_worker()
    run.fault("1 -> 2")
    await run.ready()
    await run.until_sent(0.35)
    run.add_worker()
    run.fault("2 -> 3")
    await run.ready()
    await run.until_sent(0.6)
    leaving = run.workers[1:]
    await asyncio.gather(*(asyncio.to_thread(w.stop) for w in leaving))
    run.workers = run.workers[:1]
    run.fault("3 -> 1")


async def restart_broker(run: Run) -> None:
    """Stop the single Kafka node mid-load and start it again."""
    await run.until_sent(0.3)
    await asyncio.to_thread(run.kafka.stop)
    run.fault("broker restart")
    await asyncio.to_thread(run.kafka.start)


async def kill_leader(run: Run) -> None:
    """SIGKILL the node leading the first event-log partition, then start it again."""
    await run.until_sent(0.3)
    node = await leader_of(run.kafka.bootstrap, f"{run.prefix}.events", 0)
    await asyncio.to_thread(run.kafka.kill_node, node)
    run.fault(f"leader node {node} killed")
    await run.until_sent(0.6)
    await asyncio.to_thread(run.kafka.start_node, node)


async def leader_of(bootstrap: str, topic: str, partition: int, tries: int = 30) -> int:
    """The partition's leader; aiokafka's admin client does not fail over, so retry."""
    for _ in range(tries):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            [description] = await admin.describe_topics([topic])
            for found in description["partitions"]:
                if found["partition"] == partition and found["leader"] >= 0:
                    return int(found["leader"])
        except KafkaError:
            pass
        finally:
            await admin.close()
        await asyncio.sleep(1.0)
    raise TimeoutError(f"no leader found for {topic}[{partition}]")


async def pause(run: Run) -> None:
    """SIGSTOP a worker past the group's session timeout, then SIGCONT it: the checks after
    the run (no event at a version twice, no changelog row written back) show that it did
    not act on the state the other worker took over meanwhile."""
    await run.until_sent(0.2)
    victim = run.workers[-1]
    victim.pause()
    run.fault("paused")
    await asyncio.sleep(session_timeout(run) + 15)
    victim.resume()
    run.fault("resumed")


async def no_fault(run: Run) -> None:
    """Only the load (with its duplicates)."""


async def poison(run: Run) -> None:
    """Unreadable records on every topic the workers consume, mid-load."""
    await run.until_sent(0.3)
    producer = AIOKafkaProducer(bootstrap_servers=run.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for topic in TOPICS:
            for partition in range(PARTITIONS):
                for value in GARBAGE:
                    await producer.send_and_wait(f"{run.prefix}.{topic}", value, key=b"junk",
                                                 partition=partition)
    finally:
        await producer.stop()


EVERY_RESTORE_IN_BULK = {"BULK_RESTORE_FROM": "1"}
SCENARIOS = [
    Scenario("kill-9", kill_twice, always_answers=True),
    Scenario("wipe-state", wipe_state),
    Scenario("scale-1-2-3-1", scale, workers=1, commands=1500, fast=True),
    Scenario("broker-restart", restart_broker),
    Scenario("leader-kill-3-nodes", kill_leader, nodes=3),
    Scenario("pause-past-session", pause, commands=1500, always_answers=True),
    Scenario("duplicates-10pc", no_fault, duplicate_rate=0.10, fast=True),
    Scenario("poison", poison, poison=len(TOPICS) * PARTITIONS * len(GARBAGE)),
    # The bulk restore (streams/restore.py) for every partition behind at all, not only those
    # 10,000 records behind: each rebalance, wipe and standby goes through it.
    Scenario("wipe-state-bulk", wipe_state, settings=EVERY_RESTORE_IN_BULK),
    Scenario("scale-1-2-3-1-bulk", scale, workers=1, commands=1500,
             settings=EVERY_RESTORE_IN_BULK),
]
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
