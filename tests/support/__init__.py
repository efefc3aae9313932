"""Helpers shared by the test folders (``tests/conftest.py`` makes them importable).

- :mod:`support.projects`: copies of the quickstart project, the environment of the
  processes a test starts, the ``workbench`` CLI as a subprocess, the run index, waiting
  with a deadline, and killing what a project's runs left behind. No torch.
- :mod:`support.tasks`: tiny, real training tasks for the core and extension tests (torch).

A folder's own helper module (``runs_helpers``, ``resume_helpers``, ``core_tasks``, ...)
adds what only that folder needs and passes these on to its tests.
"""
