"""Structures from the Crystallography Open Database (COD): ids typed in (:func:`cod_ids`) or
found by its public search service (:func:`cod_search`), then downloaded as CIFs and read
(:func:`cod_fetch`). Network failures, rate limits and server errors raise
:class:`~core.sources.errors.SourceError`; a missing entry or a CIF that does not parse is
listed per entry in the batch's ``failures``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from urllib.parse import urlparse

from core.sources.cif_files import MAX_CIF_BYTES
from core.sources.errors import SourceError
from core.structures import StructureBatch, StructureReadError, read_cif
from core.symmetry import UnknownSpaceGroupError, by_number, by_symbol

COD_BASE_URL = "https://www.crystallography.net/cod"
COD_MAX_ELEMENTS = 8


def spaced_symbol(number: int) -> str:
    """The Hermann-Mauguin symbol as the COD writes it: ``225 -> "F m -3 m"``,
    ``14 -> "P 21/c"``."""
    symbol = by_number(number).symbol
    parts = re.findall(r"-?\d(?:_\d)?(?:/[a-z])?|[a-z]", symbol[1:])
    return " ".join([symbol[0], *(p.replace("_", "") for p in parts)])


def _host(url: str) -> str:
    return urlparse(url).netloc or url


def _http_get(session, url: str, params: dict | None, timeout: float, what: str):
    import requests

    try:
        response = session.get(url, params=params, timeout=timeout, stream=True)
    except requests.Timeout:
        raise SourceError(f"{_host(url)} did not answer within {timeout:g} s while {what}: "
                          "no network connection, or the server is slow.") from None
    except requests.RequestException:
        raise SourceError(f"Cannot reach {_host(url)} while {what}: no network connection, "
                          "or the server is down.") from None
    if response.status_code == 429:
        raise SourceError(f"{_host(url)} is rate-limiting requests (HTTP 429) while {what}; "
                          "wait a minute and fetch fewer entries.")
    if response.status_code >= 500:
        raise SourceError(f"{_host(url)} failed (HTTP {response.status_code}) while {what}; "
                          "try again later.")
    return response


def _read_limited(response, limit: int) -> bytes | None:
    chunks, size = [], 0
    for chunk in response.iter_content(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def parse_cod_ids(text: str) -> tuple[list[str], list[str]]:
    """COD ids (7 digits) from free text; returns (ids, items that are not ids)."""
    ids, invalid = [], []
    for item in re.split(r"[\s,;]+", text or ""):
        item = item.strip()
        if not item:
            continue
        item = re.sub(r"\.cif$", "", item, flags=re.IGNORECASE)
        (ids if re.fullmatch(r"\d{7}", item) else invalid).append(item)
    return list(dict.fromkeys(ids)), invalid


def cod_ids(text: str) -> list[str]:
    """The COD ids of ``text``; raises :class:`SourceError` if there are none or if an item
    is not an id."""
    ids, invalid = parse_cod_ids(text)
    if invalid or not ids:
        raise SourceError("COD ids have 7 digits, e.g. 1000041"
                          + (f"; not ids: {', '.join(invalid)}" if invalid else ""))
    return ids


def cod_search(elements: Sequence[str] = (), space_group: int | None = None, limit: int = 50,
               base_url: str | None = None, timeout: float = 30.0, session=None) -> list[str]:
    """COD ids of entries containing all ``elements`` (and, if given, in ``space_group``),
    from the COD's public search service.

    Raises:
        SourceError: no criterion, too many elements, no network, or an answer that is not
            the COD's JSON list.
    """
    import requests

    elements = [e.strip() for e in elements if e and e.strip()]
    if not elements and not space_group:
        raise SourceError("Give at least one element or a space group to search the COD.")
    if len(elements) > COD_MAX_ELEMENTS:
        raise SourceError(f"The COD search takes at most {COD_MAX_ELEMENTS} elements.")
    params = {"format": "json"}
    params.update({f"el{i}": e for i, e in enumerate(elements, 1)})
    if space_group:
        params["spacegroup"] = spaced_symbol(int(space_group))
    base = (base_url or COD_BASE_URL).rstrip("/")
    session = session or requests.Session()
    response = _http_get(session, f"{base}/result", params, timeout, "searching the COD")
    if response.status_code != 200:
        raise SourceError(f"The COD search failed (HTTP {response.status_code}).")
    try:
        entries = response.json()
    except ValueError:
        raise SourceError("The COD search did not answer with JSON; the service may have "
                          "changed or be down.") from None
    if not isinstance(entries, list):
        raise SourceError("The COD search answered with something other than a list of entries.")
    ids = []
    for entry in entries:
        if not isinstance(entry, dict) or not str(entry.get("file", "")).isdigit():
            continue
        if space_group and entry.get("sg"):
            try:  # the server may ignore the filter; keep only the group asked for
                if by_symbol(str(entry["sg"])).number != int(space_group):
                    continue
            except UnknownSpaceGroupError:
                continue
        ids.append(str(entry["file"]))
    return list(dict.fromkeys(ids))[:max(0, int(limit))]


def cod_fetch(ids: Sequence[str], base_url: str | None = None, timeout: float = 30.0,
              progress: Callable[[int, int], None] | None = None,
              cancel: threading.Event | None = None, session=None) -> StructureBatch:
    """Download and read the CIFs of COD entries (names ``cod-<id>``).

    A missing entry or a CIF that does not parse is listed in ``failures``.

    Raises:
        SourceError: no network, or the COD refuses (rate limit, server error).
    """
    import requests

    base = (base_url or COD_BASE_URL).rstrip("/")
    session = session or requests.Session()
    batch = StructureBatch()
    for done, cod_id in enumerate(ids, 1):
        if cancel is not None and cancel.is_set():
            break
        name = f"cod-{cod_id}"
        if not re.fullmatch(r"\d{7}", str(cod_id)):
            batch.failures.append((name, "not a COD id (7 digits)"))
            continue
        response = _http_get(session, f"{base}/{cod_id}.cif", None, timeout,
                             f"downloading COD entry {cod_id}")
        if response.status_code == 404:
            batch.failures.append((name, "no such COD entry (HTTP 404)"))
        elif response.status_code != 200:
            batch.failures.append((name, f"download failed (HTTP {response.status_code})"))
        else:
            content = _read_limited(response, MAX_CIF_BYTES)
            if content is None:
                batch.failures.append((name, f"CIF larger than {MAX_CIF_BYTES // 2**20} MB"))
            else:
                try:
                    batch.structures.append(read_cif(content, f"{cod_id}.cif"))
                    batch.names.append(name)
                except StructureReadError as exc:
                    batch.failures.append((name, str(exc)))
        if progress:
            progress(done, len(ids))
    return batch
