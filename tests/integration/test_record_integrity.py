"""The record is checked at open: a real record (a burst of detections, decided and
published) with 8 KB overwritten in its middle is refused with a clear error, and
nothing is written to it."""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest

from alertsim.adapters.sqlite.integrity import CHECK, RecordDamaged, check_record
from alertsim.adapters.sqlite.store import Store
from alertsim.domain.prefectures import Atlas
from alertsim.errors import StoreError
from alertsim.service.clock import ScaledClock
from alertsim.service.config import ServiceConfig
from alertsim.service.service import Service
from alertsim.testing import DEFAULT_LAUNCH_TIME, InMemoryPublisher, eventually
from alertsim.testing.bursts import burst

DAMAGE = 8192


@pytest.fixture(scope="module")
def healthy(atlas: Atlas, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A record after a 300-detection burst, every alert published; closed (checkpointed)."""
    path = tmp_path_factory.mktemp("integrity") / "healthy.db"
    asyncio.run(_fill(atlas, path))
    assert not path.with_name(path.name + "-wal").exists()  # all of it in the db file
    return path


async def _fill(atlas: Atlas, path: Path) -> None:
    async with await Store.open(path) as store:
        clock = ScaledClock(start=DEFAULT_LAUNCH_TIME + timedelta(minutes=2))
        service = Service(atlas=atlas, store=store.record, config=ServiceConfig(), clock=clock)
        for detection in burst(300):
            await service.accept_detection(detection.model_dump_json().encode())
        pump = asyncio.create_task(service.pump(InMemoryPublisher()))
        await eventually(service.drained, timeout=60, what="the outbox drained")
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


def damaged_copy(healthy: Path, into: Path, data: bytes) -> Path:
    """A copy of the record with `data` written over the middle of the file."""
    copy = into / "damaged.db"
    shutil.copy(healthy, copy)
    size = copy.stat().st_size
    assert size > 50 * len(data)  # the middle is well inside the tables
    with copy.open("r+b") as file:
        file.seek(size // 2)
        file.write(data)
    return copy


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("data", [random.Random(8).randbytes(DAMAGE), bytes(DAMAGE)],
                         ids=["random", "zeros"])
async def test_a_record_damaged_in_its_middle_is_refused_at_open(
        healthy: Path, tmp_path: Path, data: bytes) -> None:
    """8 KB overwritten mid-file: Store.open raises RecordDamaged naming the file and what
    SQLite reported, and leaves the file as it was."""
    copy = damaged_copy(healthy, tmp_path, data)
    before = digest(copy)
    with pytest.raises(RecordDamaged) as caught:
        await Store.open(copy)
    message = str(caught.value)
    assert str(copy) in message
    assert f"SQLite's {CHECK} reported:" in message
    assert caught.value.problems
    assert caught.value.problems != ["ok"]
    assert isinstance(caught.value, StoreError)  # the CLI's one family of record errors
    assert digest(copy) == before  # no migration, no resume: nothing written


async def test_a_healthy_record_opens_and_the_check_is_cheap(healthy: Path,
                                                             tmp_path: Path) -> None:
    """The same record undamaged opens; the check's cost is noted."""
    copy = tmp_path / "copy.db"
    shutil.copy(healthy, copy)
    started = time.perf_counter()
    async with await Store.open(copy) as store:
        opened = time.perf_counter() - started
        assert len(await store.views.detections()) == 300
    print(f"\nopen with {CHECK}: {copy.stat().st_size / 1e6:.1f} MB in {opened * 1000:.0f} ms")


async def test_a_file_that_is_no_record_is_refused(tmp_path: Path) -> None:
    """A file that is not SQLite at all is damaged too, with SQLite's own words."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the pages you are looking for" * 200)
    with pytest.raises(RecordDamaged, match="not a database"):
        await Store.open(path)


async def test_check_record_finds_the_damage_without_opening_a_store(
        healthy: Path, tmp_path: Path) -> None:
    """`check_record` (for a start-up that checks before it waits for its broker) refuses
    the damaged copy read-only, passes the healthy one and a file not created yet."""
    copy = damaged_copy(healthy, tmp_path, random.Random(8).randbytes(DAMAGE))
    before = digest(copy)
    with pytest.raises(RecordDamaged, match=r"damaged\.db is damaged"):
        await check_record(copy)
    assert digest(copy) == before
    await check_record(healthy)
    await check_record(tmp_path / "not-yet.db")
    assert not (tmp_path / "not-yet.db").exists()
