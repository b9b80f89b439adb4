"""Structures from the Materials Project, through the official ``mp-api`` client. The API
key comes from the key field, the ``MP_API_KEY`` environment variable or Streamlit secrets
(:func:`mp_api_key`); it is sent to the endpoint only, never logged or stored. A missing,
malformed or rejected key, an empty query, a rate limit and a missing network each raise
:class:`~core.sources.errors.SourceError` with a message that says what to do.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from core.sources.errors import SourceError
from core.structures import StructureBatch

MP_DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
MP_FIELDS = ("material_id", "structure", "symmetry", "formula_pretty")
MP_KEY_LENGTH = 32
MP_KEY_HELP = ("Get a free key at https://next-gen.materialsproject.org/api, then set the "
               "MP_API_KEY environment variable, add MP_API_KEY to .streamlit/secrets.toml, or "
               "paste it into the key field.")


@dataclass(frozen=True)
class MPQuery:
    """A Materials Project summary search.

    Attributes:
        elements: materials containing all of these elements (and maybe others).
        chemsys: exactly this chemical system, e.g. ``"Fe-O"``.
        spacegroup_number: 1-230.
        num_sites: (min, max) sites in the cell.
        is_stable: on the convex hull (True), above it (False), or either (None).
        limit: most materials fetched.
    """

    elements: tuple[str, ...] = ()
    chemsys: str = ""
    spacegroup_number: int | None = None
    num_sites: tuple[int, int] | None = None
    is_stable: bool | None = None
    limit: int = 100

    def criteria(self) -> dict:
        criteria: dict = {}
        if self.elements:
            criteria["elements"] = list(self.elements)
        if self.chemsys.strip():
            criteria["chemsys"] = self.chemsys.strip()
        if self.spacegroup_number:
            criteria["spacegroup_number"] = int(self.spacegroup_number)
        if self.num_sites:
            criteria["num_sites"] = (int(self.num_sites[0]), int(self.num_sites[1]))
        if self.is_stable is not None:
            criteria["is_stable"] = bool(self.is_stable)
        return criteria


def mp_api_key(typed: str | None = None, secrets: Mapping | None = None) -> str | None:
    """The key to use: the one typed in, else ``MP_API_KEY`` from the environment, else from
    Streamlit secrets (``secrets`` is any mapping; pass None when there are none)."""
    for candidate in (typed, os.environ.get("MP_API_KEY"),
                      (secrets or {}).get("MP_API_KEY") if secrets is not None else None):
        if candidate and str(candidate).strip():
            return str(candidate).strip()
    return None


def _explain_mp_error(message: str, endpoint: str) -> str:
    status = re.search(r"status code (\d{3})", message)
    code = int(status.group(1)) if status else None
    if code in (401, 403):
        return (f"The Materials Project rejected the API key (HTTP {code}). Check that the "
                f"key is your current one. {MP_KEY_HELP}")
    if code == 429 or ("429" in message and "too many" in message):
        return ("The Materials Project is rate-limiting requests (HTTP 429). Wait a minute "
                "and try again with a smaller query.")
    if any(s in message for s in ("NewConnectionError", "NameResolution", "Connection refused",
                                  "ConnectionError", "Failed to resolve", "Max retries exceeded")):
        return (f"Cannot reach the Materials Project at {endpoint}: no network connection, "
                "or the service is down.")
    if "timed out" in message.lower():
        return f"The Materials Project at {endpoint} did not answer in time; try a smaller query."
    first_line = message.strip().splitlines()[-1] if message.strip() else "unknown error"
    return f"The Materials Project query failed ({code or 'error'}): {first_line[:300]}"


def mp_search(query: MPQuery, api_key: str | None, endpoint: str | None = None,
              timeout: float = 20.0) -> StructureBatch:
    """Structures from the Materials Project (names are the material ids).

    Uses the official ``mp-api`` client; ``endpoint`` points it at another server (tests use
    a local one). The key is sent to the endpoint only; it is never logged or stored.

    Raises:
        SourceError: no key or a malformed one, an empty query, a rejected key (401/403),
            a rate limit (429), no network, or any other failure of the service.
    """
    import requests

    key = (api_key or "").strip()
    if not key:
        raise SourceError(f"No Materials Project API key. {MP_KEY_HELP}")
    if len(key) != MP_KEY_LENGTH:
        raise SourceError(f"A Materials Project API key has {MP_KEY_LENGTH} characters; this "
                          f"one has {len(key)}. {MP_KEY_HELP}")
    criteria = query.criteria()
    if not criteria:
        raise SourceError("Give at least one criterion (elements, chemical system, space group, "
                          "number of sites or stability) so as not to download the whole database.")
    url = (endpoint or MP_DEFAULT_ENDPOINT).rstrip("/") + "/"
    # The client's first request (its "heartbeat") has no timeout; probe with one first so
    # that a missing network fails fast and clearly.
    try:
        requests.get(url + "heartbeat", timeout=timeout)
    except requests.Timeout:
        raise SourceError(f"The Materials Project at {url} did not answer within {timeout:g} s: "
                          "no network connection, or the service is slow.") from None
    except requests.RequestException:
        raise SourceError(f"Cannot reach the Materials Project at {url}: no network "
                          "connection, or the service is down.") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mp_api.client import MPRester
        from mp_api.client.core.exceptions import MPRestError
        try:
            with MPRester(api_key=key, endpoint=url, mute_progress_bars=True) as rester:
                docs = rester.materials.summary.search(
                    **criteria, fields=list(MP_FIELDS), num_chunks=1,
                    chunk_size=max(1, int(query.limit)))
        except MPRestError as exc:
            raise SourceError(_explain_mp_error(str(exc), url)) from None
        except requests.RequestException as exc:
            raise SourceError(_explain_mp_error(f"{exc.__class__.__name__}: {exc}", url)) from None
    batch = StructureBatch()
    for doc in list(docs)[:query.limit]:
        material = str(getattr(doc, "material_id", "") or "unknown")
        structure = getattr(doc, "structure", None)
        if structure is None:
            batch.failures.append((material, "no structure in the Materials Project answer"))
            continue
        batch.structures.append(structure)
        batch.names.append(material)
    return batch
