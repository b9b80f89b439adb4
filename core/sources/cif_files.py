"""CIF files a person brings: uploaded one by one, in zip archives, or in a folder on this
machine. Archives are read in memory and never extracted to disk by member name; members with
an absolute path or ``..``, encrypted members, oversized CIFs and other file types are skipped
and listed, and the archive size and member count are capped (``MAX_ARCHIVE_BYTES``,
``MAX_ARCHIVE_MEMBERS``, ``MAX_CIF_BYTES``). Unreadable CIFs go to the returned
:class:`~core.structures.StructureBatch`'s ``failures`` while the rest is imported.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from core.sources.errors import SourceError
from core.structures import StructureBatch, StructureReadError, read_cif

# Archive limits: uploads are read in memory, never extracted to disk by member name.
MAX_ARCHIVE_BYTES = 200 * 2**20     # total uncompressed size of the CIFs read from one zip
MAX_ARCHIVE_MEMBERS = 20_000
MAX_CIF_BYTES = 20 * 2**20          # one CIF, from an archive or from the COD


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
