"""Cross-border requests (preservation, disclosure, emergency, removal) drafted from sealed bundles.

    catalog.py    instruments and providers as shipped YAML data
    prefill.py    what the bundles say: identifiers, URLs, times, manifest hashes (each with its source)
    validate.py   every problem found before anything is written (missing, malformed, too broad)
    draft.py      request.json, the rendered documents, custody events; staged then published
    render.py     request.html and request.pdf in en / fr / ar
    store.py      the requests of a case directory: list, mark sent, preservation expiry
"""
