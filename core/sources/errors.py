"""The one error type of the dataset sources. Every failure a person can cause or meet while
building a dataset (no key, a rejected key, no network, a rate limit, a broken CIF, an unsafe
zip, a taken dataset name) raises :class:`SourceError`, whose message says what went wrong and
what to do; the dataset page shows that message as it is.
"""

from __future__ import annotations


class SourceError(RuntimeError):
    """A source that cannot deliver; the message says why and what to do."""
