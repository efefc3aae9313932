"""Reusable widgets: the virtual run table, the metric chart, the task list."""
