"""The errors cohortlab raises for a user's mistake (bad input, bad setting, unknown cohort).

Each carries a message meant to be shown as it is: the command line prints it on one line,
without a traceback, and exits non-zero."""

from __future__ import annotations


class CohortlabError(Exception):
    """Base of every error whose message is for the user."""


class SettingsError(CohortlabError, ValueError):
    """A setting or parameter is unknown, has a bad value, or a settings file cannot be read."""


class DatabaseError(CohortlabError):
    """The database cannot be opened: in use by another process, not a DuckDB file, or its
    folder cannot be created."""


class DatabaseLockedError(DatabaseError):
    """Another process holds the database's lock (DuckDB allows one writer process)."""
