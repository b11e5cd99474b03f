"""One module per backend, each exposing ``make(tmp_path, request) -> Driver``.

A backend whose server is missing skips with a reason naming the URL, or fails when CI=true.
"""
