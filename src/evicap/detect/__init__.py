"""Detection: hashes of every image and video in a capture, hash lists, and matching against them.

    media.py      media-hashes document: MD5, SHA-256, PDQ (images) / PDQ per second (videos), from WARC + screenshots
    pdq.py        PDQ of an image file within pixel caps; Hamming distance
    video.py      frames at 1 fps through a bounded ffmpeg child
    lists.py      hash-list files (CSV, JSON, JSON Lines), errors with file and line
    matching.py   PDQ within a distance (8 dihedral variants), MD5/SHA-256 exactly
    artifact.py   media-hashes.json written into a staged bundle, with matches for the manifest
    bundles.py    bundles and case directories later: read or recompute hashes, `matched` custody events
    export.py     sharing format (signal_type,signal_value,...) without content
"""
