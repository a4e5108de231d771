"""Sky positions written into names: IAU designations and ``ra=..._dec=...`` file names.

IAU designations (e.g. ``J000411.19+020924.0``, optionally after a survey prefix such as
``SDSS J...``) encode the position as JHHMMSS.ss+DDMMSS.s; the seconds may be absent or carry any
number of decimals. The parsing is one RE2 regular expression run by pyarrow over the whole column
plus numpy arithmetic, so a catalog of 10^6 names parses in well under a second.

>>> ra, dec = parse_iau_names(["J000411.19+020924.0", "J001655.18-002739.1"])
>>> [round(float(x), 6) for x in ra], [round(float(x), 6) for x in dec]
([1.046625, 4.229917], [2.156667, -0.460861])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from galexplore.errors import SurveyError

__all__ = ["parse_iau_names", "parse_position_from_filename"]

# An optional survey prefix ("SDSS ", "2MASS"), then J, then HHMM[SS[.s]] and +/-DDMM[SS[.s]].
_IAU_PATTERN = (
    r"^\s*(?:[A-Za-z0-9]*?\s*)J"
    r"(?P<h>\d\d)(?P<m>\d\d)(?P<s>\d\d(?:\.\d*)?)?"
    r"(?P<sign>[+-])"
    r"(?P<d>\d\d)(?P<dm>\d\d)(?P<ds>\d\d(?:\.\d*)?)?\s*$"
)
_IAU_FORM = "JHHMMSS.ss+DDMMSS.s, e.g. J000411.19+020924.0"

# A position in a file name: "hsc_ra=150.24071_dec=2.06514.fits" (also ra_150.2, RA-150.2).
_FILENAME_POSITION = re.compile(
    r"(?:^|[^a-z])ra[=_-]?(?P<ra>[+-]?\d+(?:\.\d*)?)[_,\s-]+dec[=_]?(?P<dec>[+-]?\d+(?:\.\d*)?)",
    re.IGNORECASE,
)


def parse_iau_names(names: Sequence[str], *, source: str = "IAU names") -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec in degrees (float64 arrays (N,)) from IAU designations.

    Raises `SurveyError` naming `source`, the first bad row and its value when a name is missing,
    malformed or out of range (hours >= 24, minutes or seconds >= 60, |Dec| > 90).
    """
    try:
        arr = pa.array(names, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # Something that is not a string (a number, bytes): find the first for the message.
        # (by position: a pandas column's own index need not be 0..N-1)
        row, value = next((i, v) for i, v in enumerate(names) if not isinstance(v, str))
        raise SurveyError(
            f"{source}: row {row} is {value!r}; expected an IAU name of the form {_IAU_FORM}"
        ) from None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    parts = pc.extract_regex(arr, _IAU_PATTERN)
    if parts.null_count:
        row = int(np.flatnonzero(parts.is_null().to_numpy(zero_copy_only=False))[0])
        raise SurveyError(
            f"{source}: row {row} is {arr[row].as_py()!r}; expected an IAU name of the form {_IAU_FORM}"
        )

    def number(field: str) -> np.ndarray:
        text = pc.struct_field(parts, field)
        text = pc.if_else(pc.equal(text, ""), "0", text)  # absent seconds
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)

    h, m, s = number("h"), number("m"), number("s")
    d, dm, ds = number("d"), number("dm"), number("ds")
    negative = pc.equal(pc.struct_field(parts, "sign"), "-").to_numpy(zero_copy_only=False)
    # The sign belongs to the whole declination, so -00 27 39.1 stays negative.
    dec = np.where(negative, -1.0, 1.0) * (d + dm / 60.0 + ds / 3600.0)
    ra = 15.0 * (h + m / 60.0 + s / 3600.0)
    bad = (h >= 24) | (m >= 60) | (s >= 60) | (dm >= 60) | (ds >= 60) | (np.abs(dec) > 90)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SurveyError(
            f"{source}: row {row} is {arr[row].as_py()!r}, out of range; expected hours < 24, "
            f"minutes and seconds < 60 and |Dec| <= 90 degrees ({_IAU_FORM})"
        )
    return ra, dec


def parse_position_from_filename(name: str) -> tuple[float, float] | None:
    """(ra, dec) in degrees from a file name like ``hsc_ra=150.24071_dec=2.06514.fits``, else None.

    >>> parse_position_from_filename("hsc_ra=150.24071_dec=2.06514.fits")
    (150.24071, 2.06514)
    >>> parse_position_from_filename("cutout_0001.fits") is None
    True
    """
    match = _FILENAME_POSITION.search(name)
    if match is None:
        return None
    return float(match["ra"]), float(match["dec"])
