"""PANalytical ``.xrdml`` scans: the XML layout, parsed with the standard library.

Only what a powder pattern needs is read: the first ``dataPoints`` block with a 2θ axis
(``startPosition``/``endPosition`` or ``listPositions``) and its ``intensities`` or
``counts``, plus the anode wavelengths from ``usedWavelength``. Documents that declare a
DTD or entities are refused before parsing, which shuts out entity-expansion and
external-entity attacks.

Errors are reported as :class:`core.readers.PatternReadError`; this module is called by
:func:`core.readers.read_pattern` and is not meant to be used on its own.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator

import numpy as np

_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DTD_BYTES = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _local(tag: str) -> str:
    """Tag name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (child for child in element.iter() if _local(child.tag) == name)


def _first(element: ET.Element, name: str) -> ET.Element | None:
    return next(_children(element, name), None)


def _numbers(element: ET.Element | None) -> np.ndarray:
    if element is None or not (element.text or "").strip():
        return np.empty(0)
    return np.array([float(v) for v in element.text.split()], dtype=np.float64)


def _wavelength(root: ET.Element) -> tuple[float | None, dict]:
    """Kα1/Kα2 weighted by their ratio (Å), and the parts as metadata."""
    used = _first(root, "usedWavelength")
    if used is None:
        return None, {}
    parts = {}
    for key in ("kAlpha1", "kAlpha2", "kBeta", "ratioKAlpha2KAlpha1"):
        values = _numbers(_first(used, key))
        if values.size:
            parts[key] = float(values[0])
    k1 = parts.get("kAlpha1")
    if k1 is None or not 0.1 < k1 < 5.0:
        return None, parts
    k2, ratio = parts.get("kAlpha2"), parts.get("ratioKAlpha2KAlpha1", 0.0)
    if k2 is None or not ratio > 0:  # also a NaN ratio
        return k1, parts
    weighted = (k1 + ratio * k2) / (1.0 + ratio)
    return (weighted if 0.1 < weighted < 5.0 else k1), parts  # a nonsense Kα2 or ratio: Kα1


def parse_xrdml(text: str, raw: bytes, label: str,
                error: Callable[[str], Exception]) -> tuple[np.ndarray, np.ndarray, float | None, dict]:
    """Parse an XRDML document.

    Args:
        text: the decoded document.
        raw: the file's bytes, checked for DTD declarations as well as ``text``.
        label: file name for messages.
        error: factory for the exception to raise (given the full message).

    Returns:
        ``(two_theta, intensity, wavelength, metadata)``: 2θ in degrees, intensities in the
        file's units, the weighted Kα wavelength in Å (None when absent).
    """
    if _DTD.search(text) or _DTD_BYTES.search(raw):
        raise error(f"{label}: XML with DTD/entities refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise error(f"{label}: invalid XML ({exc})") from exc
    blocks = list(_children(root, "dataPoints"))
    if not blocks:
        raise error(f"{label}: no dataPoints element; not an XRDML scan")
    for block in blocks:
        axis = next((p for p in _children(block, "positions")
                     if p.get("axis", "").lower() in ("2theta", "2-theta", "twotheta")), None)
        intensity = _numbers(_first(block, "intensities"))
        if intensity.size == 0:
            intensity = _numbers(_first(block, "counts"))
        if axis is None or intensity.size == 0:
            continue
        listed = _numbers(_first(axis, "listPositions"))
        if listed.size:
            if listed.size != intensity.size:
                raise error(f"{label}: {listed.size} 2θ positions but {intensity.size} intensities")
            two_theta = listed
        else:
            start = _numbers(_first(axis, "startPosition"))
            end = _numbers(_first(axis, "endPosition"))
            if not (start.size and end.size):
                raise error(f"{label}: 2θ axis without start/end or listed positions")
            two_theta = np.linspace(start[0], end[0], intensity.size)
        wavelength, parts = _wavelength(root)
        metadata: dict = {"n_scans": len(blocks)}
        if parts:
            metadata["wavelengths"] = parts
        sample = _first(root, "sample")
        if sample is not None:
            for key in ("id", "name"):
                node = _first(sample, key)
                if node is not None and (node.text or "").strip():
                    metadata[f"sample_{key}"] = node.text.strip()
        return two_theta, intensity, wavelength, metadata
    raise error(f"{label}: no scan with a 2θ axis and intensities")
