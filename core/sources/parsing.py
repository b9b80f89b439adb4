"""Reading what a person types into the dataset page's query fields: space groups given as
numbers, ranges or Hermann-Mauguin symbols, and element symbols. Both parsers keep the order
given, drop repeats, and raise :class:`~core.sources.errors.SourceError` naming the item that
is not understood.
"""

from __future__ import annotations

import re

from core.sources.errors import SourceError
from core.symmetry import UnknownSpaceGroupError, by_symbol


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
