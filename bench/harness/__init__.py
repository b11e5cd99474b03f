"""The benchmark harness: runs in Conveyor's own environment, drives every library's venv."""
