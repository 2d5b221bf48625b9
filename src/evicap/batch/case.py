"""The case lifecycle of a batch: open (or resume) the case index, record each target's outcome, close and seal.

Opening a case that was sealed before archives that seal first (the sealed index is kept whole before anything
changes it); half-written staging directories left by an earlier run are never deleted: they are set aside under
``.unsealed/`` (unsealed, so never mistaken for a bundle, but kept); bundles already on disk are reconciled with
the index. The CLI turns the returned notes into output and the summary into an exit code.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evicap.batch.index import CaseIndex, Superseded, utc_now
from evicap.batch.index_seal import IndexSeal, archive_seal, is_sealed, seal_index
from evicap.batch.resume import reconcile
from evicap.batch.runner import RunReport, TargetOutcome
from evicap.batch.targets import TargetList
from evicap.bundle import layout
from evicap.bundle.model import CaptureResult
from evicap.errors import UsageError

UNSEALED_DIR = ".unsealed"  # staging directories of captures that never finished, kept for examination


@dataclass
class OpenedCase:
    index: CaseIndex
    notes: list[str] = field(default_factory=list)  # what opening did (set aside, reconciled), for the CLI
    nothing_to_do: bool = False  # every target complete and the index already sealed


def set_aside_staging(directory: Path) -> list[str]:
    """Move half-written staging directories into ``.unsealed/``; returns notes naming each one."""
    notes = []
    for child in sorted(directory.iterdir()):
        if child.name.startswith(layout.STAGING_PREFIX) and child.is_dir() and not child.is_symlink():
            aside = directory / UNSEALED_DIR
            aside.mkdir(exist_ok=True)
            shutil.move(str(child), str(aside / child.name))
            notes.append(f"set aside half-written {child.name} in {UNSEALED_DIR}/ (never sealed, kept)")
        elif child.name.startswith(f".{layout.INDEX}.tmp-") and child.is_file():
            child.unlink(missing_ok=True)
    return notes


def open_case(directory: Path, case_id: str, targets: TargetList, resume: bool) -> OpenedCase:
    """The case index of ``directory``, ready for this run; raises UsageError for a directory in use."""
    notes: list[str] = []
    if (directory / layout.INDEX).exists():
        if not resume:
            raise UsageError(
                f"{directory} already holds a case index",
                hint="add --resume to continue that batch, or choose another --output",
            )
        index = CaseIndex.load(directory)
        if index.case_id != case_id:
            raise UsageError(f"{directory} holds case {index.case_id!r}, not {case_id!r}")
        if is_sealed(directory) and _all_done(index, targets):
            return OpenedCase(index, nothing_to_do=True)
        if is_sealed(directory):
            archive_seal(directory)
        notes += set_aside_staging(directory)
        notes += reconcile(index)
    else:
        if resume:
            notes.append(f"no case index in {directory} yet: starting the batch")
        index = CaseIndex(directory, case_id)
        notes += set_aside_staging(directory)
    index.add_targets(targets)
    index.state = "running"
    index.runs.append({"started_at": utc_now(), "targets": len(targets.targets), "resume": resume})
    index.save(force=True)
    return OpenedCase(index, notes)


def _all_done(index: CaseIndex, targets: TargetList) -> bool:
    entries = index.entries
    return all(t.item in entries and entries[t.item].status == "complete" for t in targets.targets)


def record_outcome(index: CaseIndex, outcome: TargetOutcome) -> None:
    """One target's final result into the index (earlier bundles of it listed as superseded)."""
    result = outcome.result
    entry = index.entries[outcome.target.item]
    superseded = entry.superseded + tuple(_superseded(index, r) for r in outcome.superseded)
    if entry.bundle and result.bundle:
        superseded += (Superseded(entry.bundle, entry.status, entry.reason, entry.manifest_sha256),)
    index.update(
        outcome.target.item,
        status=result.status,
        reason=result.error if result.status != "complete" else None,
        attempts=entry.attempts + outcome.attempts,
        bundle=_relative(index, result.bundle) if result.bundle else entry.bundle,
        manifest_sha256=result.manifest_sha256 if result.bundle else entry.manifest_sha256,
        http_status=outcome.http_status,
        started_at=outcome.started_at,
        ended_at=outcome.ended_at,
        superseded=superseded,
    )
    index.save()


def close_case(index: CaseIndex, report: RunReport, sealing: Any) -> IndexSeal | None:
    """Close the run in the index; seal it unless the run was interrupted (then None)."""
    for left in report.unfinished:
        entry = index.entries[left.target.item]
        index.update(
            left.target.item,
            attempts=entry.attempts + left.attempts,
            reason="interrupted before it was captured" if entry.status == "pending" else entry.reason,
            superseded=entry.superseded + tuple(_superseded(index, r) for r in left.superseded),
        )
    index.state = "interrupted" if report.interrupted else "finished"
    index.runs[-1]["ended_at"] = utc_now()
    index.runs[-1]["interrupted"] = report.interrupted
    index.save(force=True)
    if report.interrupted:
        return None
    return seal_index(index.directory, sealing, {"case_id": index.case_id, "summary": index.summary()})


def _relative(index: CaseIndex, bundle: str) -> str:
    return Path(bundle).resolve().relative_to(index.directory.resolve()).as_posix()


def _superseded(index: CaseIndex, result: CaptureResult) -> Superseded:
    assert result.bundle is not None
    return Superseded(_relative(index, result.bundle), result.status, result.error, result.manifest_sha256)
