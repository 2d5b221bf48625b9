"""The batch's default concurrency: three captures per core, fewer when memory is short (docs/batch.md)."""

from __future__ import annotations

from evicap.batch.capacity import MAX_DEFAULT, available_memory, cores, default_concurrency

GB = 1024**3


def test_three_captures_per_core_when_memory_is_plentiful() -> None:
    assert default_concurrency(cpu=1, memory=16 * GB) == 3
    assert default_concurrency(cpu=2, memory=16 * GB) == 6
    assert default_concurrency(cpu=64, memory=512 * GB) == MAX_DEFAULT


def test_memory_short_machine_runs_fewer_and_never_none() -> None:
    assert default_concurrency(cpu=8, memory=900 * 1024**2) == 3  # (900 - 450) MB / 150 MB per capture
    assert default_concurrency(cpu=8, memory=100 * 1024**2) == 1


def test_this_machine_is_measured() -> None:
    assert cores() >= 1
    memory = available_memory()
    assert memory is None or memory > 0
    assert 1 <= default_concurrency() <= MAX_DEFAULT
