"""Watching targets over time: re-capture on a schedule, compare each capture with the previous one, log changes.

    snapshot.py   what a bundle says about its target: status, wall, items (posts by id), media hashes, page text
    compare.py    two snapshots -> changes (new / edited / deleted / unavailable items, account, wall, page text)
    state.py      the schedule's state file (atomic), durations, the change log (JSON Lines)
    runner.py     the loop: due targets through the batch scheduler and capture, compare, record, sleep
    history.py    each target's captures and changes, read back from the case directory (for reports)
"""
