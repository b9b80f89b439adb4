"""Where new dataset rows come from, besides random crystals: the Materials Project, the
Crystallography Open Database (COD), and CIF files uploaded one by one, in a zip archive or in
a folder. Plus what the dataset page needs to run a build in the background and store it.

Every failure a person can cause or meet (no key, a rejected key, no network, a rate limit,
a broken CIF, an unsafe zip) raises :class:`SourceError` with a message that says what went
wrong and what to do, or is listed per file in a :class:`~core.structures.StructureBatch`'s
``failures`` while the rest is imported.

Modules: :mod:`~core.sources.errors` (SourceError), :mod:`~core.sources.parsing` (space
groups and elements typed in), :mod:`~core.sources.materials_project`,
:mod:`~core.sources.cod`, :mod:`~core.sources.cif_files` (uploads, zips, folders),
:mod:`~core.sources.building` (simulate and store), :mod:`~core.sources.background`
(BackgroundJob) and :mod:`~core.sources.export` (CSV and Parquet downloads). The public
names are re-exported here, so ``from core.sources import X`` works for all of them; to
monkeypatch one, patch it in the submodule that defines and uses it.
"""

from __future__ import annotations

from core.sources.background import BackgroundJob
from core.sources.building import (
    BuildResult,
    check_scheduler,
    check_target,
    simulate_and_store,
    store_rows,
    synthesize_and_store,
)
from core.sources.cif_files import (
    MAX_ARCHIVE_BYTES,
    MAX_ARCHIVE_MEMBERS,
    MAX_CIF_BYTES,
    cifs_in_zip,
    read_cif_directory,
    read_cif_files,
)
from core.sources.cod import (
    COD_BASE_URL,
    COD_MAX_ELEMENTS,
    cod_fetch,
    cod_ids,
    cod_search,
    parse_cod_ids,
    spaced_symbol,
)
from core.sources.errors import SourceError
from core.sources.export import export_csv, export_parquet
from core.sources.materials_project import (
    MP_DEFAULT_ENDPOINT,
    MP_FIELDS,
    MP_KEY_HELP,
    MP_KEY_LENGTH,
    MPQuery,
    mp_api_key,
    mp_search,
)
from core.sources.parsing import parse_elements, parse_space_groups

__all__ = [
    "BackgroundJob",
    "BuildResult",
    "COD_BASE_URL",
    "COD_MAX_ELEMENTS",
    "MAX_ARCHIVE_BYTES",
    "MAX_ARCHIVE_MEMBERS",
    "MAX_CIF_BYTES",
    "MPQuery",
    "MP_DEFAULT_ENDPOINT",
    "MP_FIELDS",
    "MP_KEY_HELP",
    "MP_KEY_LENGTH",
    "SourceError",
    "check_scheduler",
    "check_target",
    "cifs_in_zip",
    "cod_fetch",
    "cod_ids",
    "cod_search",
    "export_csv",
    "export_parquet",
    "mp_api_key",
    "mp_search",
    "parse_cod_ids",
    "parse_elements",
    "parse_space_groups",
    "read_cif_directory",
    "read_cif_files",
    "simulate_and_store",
    "spaced_symbol",
    "store_rows",
    "synthesize_and_store",
]
