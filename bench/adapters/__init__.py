"""One module per library: ``<name>_adapter.py`` defines ``Adapter`` (see ``base.py``)."""
