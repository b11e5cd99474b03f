"""The worker: a control process that reserves and settles, and an executor child."""
