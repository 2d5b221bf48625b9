"""Batch capture: a target list in, one sealed bundle per target and a sealed case index out.

    targets.py      read .txt / .csv / .yaml / stdin lists; bad lines become line-numbered problems
    runner.py       the scheduler: concurrency, per-host limits and delays, retries with backoff, stop / abort
    job.py          the real capture behind the scheduler: one shared browser, capture_url per target
    index.py        the case index (case-index.json), atomic rewrites; verify_index() for `evicap verify DIR`
    resume.py       lock, staging leftovers, adopting bundles published just before a crash
    index_seal.py   signing, timestamping and the custody log of the index; history of earlier seals
    index_check.py  the checks verify_index runs

Nothing here prints or exits; `evicap.cli.batch` is the command. See docs/batch.md.
"""
