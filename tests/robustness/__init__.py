"""Robustness suite: malformed inputs, unwritable outputs, full disks, interruptions."""
