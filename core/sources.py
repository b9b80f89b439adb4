"""Where new dataset rows come from, besides random crystals: the Materials Project, the
Crystallography Open Database (COD), and CIF files uploaded one by one, in a zip archive or in
a folder. Plus what the dataset page needs to run a build in the background and store it.

Every failure a person can cause or meet (no key, a rejected key, no network, a rate limit,
a broken CIF, an unsafe zip) raises :class:`SourceError` with a message that says what went
wrong and what to do, or is listed per file in a :class:`~core.structures.StructureBatch`'s
``failures`` while the rest is imported.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pandas as pd

from core import dataset as store
from core.generation import GenerationReport, generate_from_structures, generate_synthetic
from core.grid import CU_KA
from core.structures import RandomCrystalSpec, StructureBatch, StructureReadError, read_cif
from core.symmetry import UnknownSpaceGroupError, by_number, by_symbol

MP_DEFAULT_ENDPOINT = "https://api.materialsproject.org/"
MP_FIELDS = ("material_id", "structure", "symmetry", "formula_pretty")
MP_KEY_LENGTH = 32
MP_KEY_HELP = ("Get a free key at https://next-gen.materialsproject.org/api, then set the "
               "MP_API_KEY environment variable, add MP_API_KEY to .streamlit/secrets.toml, or "
               "paste it into the key field.")
COD_BASE_URL = "https://www.crystallography.net/cod"
COD_MAX_ELEMENTS = 8

# Archive limits: uploads are read in memory, never extracted to disk by member name.
MAX_ARCHIVE_BYTES = 200 * 2**20     # total uncompressed size of the CIFs read from one zip
MAX_ARCHIVE_MEMBERS = 20_000
MAX_CIF_BYTES = 20 * 2**20          # one CIF, from an archive or from the COD


class SourceError(RuntimeError):
    """A source that cannot deliver; the message says why and what to do."""


# --------------------------------------------------------------------------- space groups


def parse_space_groups(text: str) -> list[int]:
    """Space-group numbers from text such as ``"14, 62-74; P2_1/c, Fm-3m"``.

    Items are separated by commas, semicolons or new lines; an item is a number, a range of
    numbers ``a-b`` or a Hermann-Mauguin symbol. Order is kept, repeats are dropped.

    Raises:
        SourceError: an item names no space group.
    """
    numbers: list[int] = []
    for item in re.split(r"[,;\n]+", text or ""):
        item = item.strip()
        if not item:
            continue
        span = re.fullmatch(r"(\d+)\s*-\s*(\d+)", item)
        try:
            if span:
                low, high = sorted((int(span.group(1)), int(span.group(2))))
                if low < 1 or high > 230:
                    raise UnknownSpaceGroupError(item)
                numbers.extend(range(low, high + 1))
            else:
                numbers.append(by_symbol(item).number)
        except (UnknownSpaceGroupError, ValueError):
            raise SourceError(f"{item!r} is not a space group: give numbers 1-230, ranges such "
                              "as 195-230, or symbols such as P2_1/c") from None
    return list(dict.fromkeys(numbers))


def parse_elements(text: str) -> list[str]:
    """Element symbols from text such as ``"Fe, O"`` or ``"fe o"``.

    Raises:
        SourceError: an item is not an element symbol.
    """
    from pymatgen.core.periodic_table import Element

    items = [e.strip().capitalize() for e in re.split(r"[\s,;]+", text or "") if e.strip()]
    bad = [e for e in items if not Element.is_valid_symbol(e)]
    if bad:
        raise SourceError(f"not element symbols: {', '.join(bad)}")
    return list(dict.fromkeys(items))


def spaced_symbol(number: int) -> str:
    """The Hermann-Mauguin symbol as the COD writes it: ``225 -> "F m -3 m"``,
    ``14 -> "P 21/c"``."""
    symbol = by_number(number).symbol
    parts = re.findall(r"-?\d(?:_\d)?(?:/[a-z])?|[a-z]", symbol[1:])
    return " ".join([symbol[0], *(p.replace("_", "") for p in parts)])


# --------------------------------------------------------------------------- storing rows


def check_target(name: str, mode: str) -> None:
    """Check that rows can go to dataset ``name`` (``mode`` ``"new"`` or ``"append"``).

    Raises:
        SourceError: an invalid or taken name for a new dataset, a missing or protected one
            to append to.
    """
    name = (name or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", name):
        raise SourceError(f"dataset name {name!r}: use 1-64 letters, digits, '-', '_' or '.', "
                          "starting with a letter or digit")
    path = store.dataset_path(name)
    if name == "default" or path == store.bundled_dataset_path():
        raise SourceError("the bundled dataset 'default' is read-only: create a new dataset "
                          "or append to one you made")
    if mode == "new" and path.exists():
        raise SourceError(f"dataset {name!r} already exists: choose another name, or append to it")
    if mode == "append" and not path.exists():
        raise SourceError(f"dataset {name!r} does not exist: create it as a new dataset")
    if mode not in ("new", "append"):
        raise SourceError(f"unknown target mode {mode!r} (new or append)")


def store_rows(name: str, rows: pd.DataFrame, mode: str, command: str = "", **meta) -> int:
    """Write ``rows`` to dataset ``name`` in one atomic write; returns the rows added.

    Rows whose id is already in the dataset (the same CIF or material imported twice) are not
    added again.

    Raises:
        SourceError: see :func:`check_target`; also when there is nothing to store.
    """
    check_target(name, mode)
    rows = rows.drop_duplicates("id")
    if rows.empty:
        raise SourceError("nothing to store: no pattern could be simulated")
    if mode == "new":
        store.create(name, rows, command=command, **meta)
        return len(rows)
    before = len(store.load(name))
    return len(store.append(name, rows)) - before


@dataclass
class BuildResult:
    """What a build stored: the dataset, the patterns added, and what was skipped."""

    dataset: str
    added: int
    requested: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    mismatched: int = 0
    cancelled: bool = False
    saved: bool = True


def _finish(report: GenerationReport, name: str, mode: str, command: str,
            read_failures: Sequence[tuple[str, str]], keep_partial: bool) -> BuildResult:
    failures = [*read_failures, *report.failures]
    if report.cancelled and not keep_partial:
        return BuildResult(name, 0, report.requested, failures, report.mismatched, True, False)
    added = store_rows(name, report.rows, mode, command=command) if len(report.rows) else 0
    if not len(report.rows) and not report.cancelled:
        raise SourceError("nothing to store: no pattern could be simulated"
                          + (f" ({failures[0][0]}: {failures[0][1]})" if failures else ""))
    return BuildResult(name, added, report.requested, failures, report.mismatched,
                       report.cancelled, bool(added))


def synthesize_and_store(space_groups: Sequence[int], name: str, mode: str, seed: int = 0,
                         spec: RandomCrystalSpec = RandomCrystalSpec(), command: str = "",
                         processes: int | None = None, scheduler: str | None = None,
                         job: "BackgroundJob | None" = None) -> BuildResult:
    """Random crystals for ``space_groups`` (repeat a number for several), simulated and
    stored. With a ``job``, progress and cancellation go through it."""
    check_target(name, mode)
    if job:
        job.stage = "generating random crystals"
    report = generate_synthetic(space_groups, seed=seed, spec=spec, wavelength=CU_KA,
                                processes=processes, scheduler=scheduler,
                                progress=job.progress if job else None,
                                cancel=job.cancel if job else None)
    return _finish(report, name, mode, command, [], job.keep_partial if job else True)


def simulate_and_store(batch: StructureBatch, source: str, name: str, mode: str,
                       command: str = "", processes: int | None = None,
                       scheduler: str | None = None,
                       job: "BackgroundJob | None" = None) -> BuildResult:
    """Simulate the structures of ``batch`` (ids are ``batch.names``) and store them; the
    batch's read failures are reported with the simulation failures."""
    check_target(name, mode)
    if not batch.structures:
        reasons = "; ".join(f"{n}: {r}" for n, r in batch.failures[:3])
        raise SourceError("no structure to simulate" + (f" ({reasons})" if reasons else ""))
    if job:
        job.stage = f"simulating {len(batch.structures)} structures"
    report = generate_from_structures(batch.structures, batch.names, source, wavelength=CU_KA,
                                      processes=processes, scheduler=scheduler,
                                      progress=job.progress if job else None,
                                      cancel=job.cancel if job else None)
    return _finish(report, name, mode, command, batch.failures,
                   job.keep_partial if job else True)


def check_scheduler(address: str, timeout: float = 5.0) -> None:
    """Check that a Dask scheduler answers at ``address`` (``"local"`` always does).

    Raises:
        SourceError: nothing answers there within ``timeout`` seconds.
    """
    if not address or address == "local":
        return
    if not re.fullmatch(r"((tcp|tls|ws|wss)://)?[\w.\-\[\]:]+:\d{1,5}/?", address.strip()):
        raise SourceError(f"{address!r} is not a Dask scheduler address: write it as "
                          "tcp://host:8786, or 'local' for a cluster on this machine")
    from dask.distributed import Client

    try:
        with Client(address, timeout=timeout):
            pass
    except Exception as exc:  # OSError or TimeoutError mostly; distributed raises others too
        detail = ((str(exc).strip().splitlines() or ["no answer"])[0][:160]
                  if isinstance(exc, (OSError, TimeoutError))
                  else "something answers there, but not as a Dask scheduler")
        raise SourceError(f"no Dask scheduler answers at {address!r} within {timeout:g} s "
                          f"({detail}); start one with `dask scheduler`, or leave the field "
                          "empty to use worker processes here") from None


# --------------------------------------------------------------------------- background jobs


class BackgroundJob:
    """Run ``work(job)`` in a thread; the page polls progress and may stop it.

    ``work`` reports through :meth:`progress`, watches :attr:`cancel`, and reads
    :attr:`keep_partial` to decide whether a stopped run stores what it finished.
    """

    def __init__(self, label: str, work: Callable[["BackgroundJob"], object]) -> None:
        self.label = label
        self.stage = "starting"
        self.cancel = threading.Event()
        self.keep_partial = True
        self.done = 0
        self.total = 0
        self.result: object = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.finished_at: float | None = None
        self._work = work
        self._thread = threading.Thread(target=self._run, name=f"dataset-job-{label}", daemon=True)

    def start(self) -> "BackgroundJob":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self._work(self)
        except BaseException as exc:  # reported to the page, never lost in the thread
            self.error = exc
        finally:
            self.finished_at = time.monotonic()

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = int(done), int(total)

    def stop(self, keep_partial: bool) -> None:
        """Ask the work to stop; ``keep_partial`` stores what was finished."""
        self.keep_partial = keep_partial
        self.cancel.set()

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left, from the pace so far (None before the first item)."""
        if not self.done or not self.total:
            return None
        return self.elapsed / self.done * max(self.total - self.done, 0)

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self.running


# --------------------------------------------------------------------------- CIF files


def _unsafe_member(name: str) -> bool:
    posix = name.replace("\\", "/")
    return (posix.startswith("/") or bool(re.match(r"^[A-Za-z]:", posix))
            or ".." in PurePosixPath(posix).parts)


def cifs_in_zip(data: bytes, archive: str = "archive.zip",
                max_bytes: int = MAX_ARCHIVE_BYTES,
                max_members: int = MAX_ARCHIVE_MEMBERS) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """The CIFs of a zip archive, read in memory.

    Directories, hidden files and ``__MACOSX`` entries are ignored; members with ``..`` or an
    absolute path, other file types and encrypted members are skipped and listed.

    Returns:
        (files, skipped): ``(name, bytes)`` of each CIF, named ``archive/member``, and
        ``(name, reason)`` of each skipped member.

    Raises:
        SourceError: not a zip, more than ``max_members`` members, or more than ``max_bytes``
            of CIF data once uncompressed.
    """
    try:
        archive_file = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise SourceError(f"{archive}: not a valid zip archive") from None
    infos = archive_file.infolist()
    if len(infos) > max_members:
        raise SourceError(f"{archive}: {len(infos)} members, more than the {max_members} allowed")
    files: list[tuple[str, bytes]] = []
    skipped: list[tuple[str, str]] = []
    total = 0
    for info in infos:
        name = info.filename
        label = f"{archive}/{name}"
        base = PurePosixPath(name.replace("\\", "/")).name
        if info.is_dir() or not base or base.startswith(".") or "__MACOSX" in name:
            continue
        if _unsafe_member(name):
            skipped.append((label, "unsafe path (absolute or with '..'), ignored"))
            continue
        if not base.lower().endswith(".cif"):
            skipped.append((label, "not a .cif file"))
            continue
        if info.flag_bits & 0x1:
            skipped.append((label, "encrypted member, cannot be read"))
            continue
        if info.file_size > MAX_CIF_BYTES:
            skipped.append((label, f"larger than {MAX_CIF_BYTES // 2**20} MB"))
            continue
        if total + info.file_size > max_bytes:
            raise SourceError(f"{archive}: more than {max_bytes // 2**20} MB of CIFs once "
                              "uncompressed; split it into smaller archives")
        try:
            with archive_file.open(info) as handle:
                content = handle.read(MAX_CIF_BYTES + 1)
        except (zipfile.BadZipFile, NotImplementedError, OSError, RuntimeError) as exc:
            skipped.append((label, f"cannot be decompressed ({exc})"))
            continue
        if len(content) > MAX_CIF_BYTES:  # the header understated the size
            skipped.append((label, f"larger than {MAX_CIF_BYTES // 2**20} MB"))
            continue
        total += len(content)
        if total > max_bytes:
            raise SourceError(f"{archive}: more than {max_bytes // 2**20} MB of CIFs once "
                              "uncompressed; split it into smaller archives")
        files.append((label, content))
    return files, skipped


def read_cif_files(files: Iterable[tuple[str, bytes]], folder: str | Path = "") -> StructureBatch:
    """Structures from uploaded files (CIFs and zip archives of CIFs) and, if given, from the
    CIFs in ``folder`` (see :func:`read_cif_directory`).

    Unreadable files and archives are listed in ``failures`` with their reason; names are
    the file names (``archive.zip/member.cif`` inside an archive).

    Raises:
        SourceError: ``folder`` is given but missing or holds no CIF.
    """
    batch = read_cif_directory(folder) if str(folder).strip() else StructureBatch()
    for name, content in files:
        if name.lower().endswith(".zip"):
            try:
                members, skipped = cifs_in_zip(content, name)
            except SourceError as exc:
                batch.failures.append((name, str(exc)))
                continue
            batch.failures.extend(skipped)
        elif name.lower().endswith(".cif"):
            members = [(name, content)]
        else:
            batch.failures.append((name, "not a .cif or .zip file"))
            continue
        for member, data in members:
            try:
                batch.structures.append(read_cif(data, member))
                batch.names.append(member)
            except StructureReadError as exc:
                batch.failures.append((member, str(exc)))
    return batch


def read_cif_directory(folder: str | Path) -> StructureBatch:
    """Every ``*.cif`` in ``folder`` (not its subfolders); unreadable ones are listed.

    Raises:
        SourceError: the folder does not exist or holds no CIF.
    """
    from core.structures import read_cif_folder

    text = str(folder).strip()
    path = Path(text).expanduser()
    if not text or not path.is_dir():
        raise SourceError(f"folder {text!r} does not exist or is not a folder")
    batch = read_cif_folder(path, pattern="*.[cC][iI][fF]")
    if not batch.structures and not batch.failures:
        raise SourceError(f"folder {text!r} holds no .cif file")
    return batch


# --------------------------------------------------------------------------- Materials Project


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


# --------------------------------------------------------------------------- COD


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


# --------------------------------------------------------------------------- export


def export_csv(dataset: store.Dataset) -> bytes:
    """The dataset as CSV: one row per pattern, its labels and metadata, and the peak list
    columns (2θ, intensity, d, h, k, l) as space-separated numbers."""
    table = dataset.table.copy()
    for column in store.PEAK_COLUMNS:
        if column in table:
            if column in ("h", "k", "l"):
                table[column] = table[column].map(lambda v: " ".join(str(int(x)) for x in v))
            else:
                table[column] = table[column].map(lambda v: " ".join(f"{float(x):.6g}" for x in v))
    return table.to_csv(index=False).encode("utf-8")


def export_parquet(name: str) -> bytes:
    """The dataset's Parquet file, as stored."""
    return store.dataset_path(name).read_bytes()
