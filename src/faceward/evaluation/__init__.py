"""Accuracy evaluation on labelled face folders (LFW-style pairs, closed- and open-set identification)."""
