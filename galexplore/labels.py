"""Class columns, the categorical labels (Galaxy Zoo 1's ``gz1_type``, a survey's own types).

A class column holds strings or integers. A row carries a class where its value is present (not
NaN or None, not an empty or blank string) and is not one of the column's `unlabelled` values
("unknown", or "-1" for an integer column). Values are compared as text, stripped, and integral
numbers are written without a decimal point, so an integer column read through a CSV with
missing cells (which pandas makes float: 3.0) still has the class "3".

Classes are listed sorted, in the column's own type: strings for a text column, integers for an
integer one, so a probe's predicted class reads like the label it predicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

#: the class shown for rows without a label where a class column colours a map or a table
UNLABELLED = "unlabelled"


def is_numeric(values: pd.Series) -> bool:
    """Whether a column holds numbers (booleans are not: they are two classes of text).

    >>> is_numeric(pd.Series([1, 2])), is_numeric(pd.Series(["a"])), is_numeric(pd.Series([True]))
    (True, False, False)
    """
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def class_text(values: Sequence[Any] | pd.Series) -> np.ndarray:
    """Each value as class text (N,) object, None where it is missing.

    >>> class_text(pd.Series([" spiral", "", None, "merger"])).tolist()
    ['spiral', None, None, 'merger']
    >>> class_text(pd.Series([3.0, np.nan, 1.0, 0.5])).tolist()
    ['3', None, '1', '0.5']
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    if is_numeric(series):
        numbers = series.to_numpy(dtype=np.float64)
        missing = ~np.isfinite(numbers)
        safe = np.where(missing, 0.0, numbers)
        text = np.where(safe == np.round(safe), safe.astype(np.int64).astype(str), safe.astype(str)).astype(object)
    else:
        missing = series.isna().to_numpy()
        text = series.astype(object).where(~missing, "").astype(str).str.strip().to_numpy(dtype=object)
        missing = missing | (text == "")
    text[missing] = None
    return text


def labelled_classes(values: Sequence[Any] | pd.Series, unlabelled: Iterable[str] = ()) -> np.ndarray:
    """Which rows (N,) bool carry a class: a value present and not one of `unlabelled`.

    >>> labelled_classes(pd.Series(["spiral", "unknown", "", None, "merger"]), ["unknown"]).tolist()
    [True, False, False, False, True]
    """
    return _labelled(class_text(values), unlabelled)


def _labelled(text: np.ndarray, unlabelled: Iterable[str]) -> np.ndarray:
    """Which of `class_text`'s values (N,) carry a class."""
    return pd.notna(text) & ~np.isin(text.astype(str), [str(u).strip() for u in unlabelled])


def class_names(values: Sequence[Any] | pd.Series, unlabelled: Iterable[str] = ()) -> list[Any]:
    """The distinct classes of the labelled rows, sorted, in the column's own type (a JSON-able list).

    >>> class_names(pd.Series(["spiral", "unknown", "elliptical", "spiral"]), ["unknown"])
    ['elliptical', 'spiral']
    >>> class_names(pd.Series([2.0, np.nan, 10.0, 2.0]))
    [2, 10]
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    text = class_text(series)
    present = sorted(set(text[_labelled(text, unlabelled)]))
    if not is_numeric(series):
        return present
    numbers = sorted(float(t) for t in present)
    return [int(v) if v.is_integer() else v for v in numbers]


def encode_classes(values: Sequence[Any] | pd.Series, classes: Sequence[Any],
                   unlabelled: Iterable[str] = ()) -> np.ndarray:
    """Each row's index (N,) int64 into `classes` (as `class_names` lists them); -1 where the row
    has no label or a class not among them.

    >>> encode_classes(pd.Series(["spiral", "unknown", "elliptical"]), ["elliptical", "spiral"], ["unknown"]).tolist()
    [1, -1, 0]
    """
    text = class_text(values)
    index = pd.Series(text).map({str(c): i for i, c in enumerate(classes)}).fillna(-1).to_numpy(dtype=np.int64)
    return np.where(_labelled(text, unlabelled), index, -1)


def decode_classes(index: np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """The classes (N,) of class indices `index` (float or int; from a float32 stack), in the
    classes' own type: int64 for integer classes, object strings for text ones.

    >>> decode_classes(np.array([1.0, 0.0], np.float32), ["elliptical", "spiral"]).tolist()
    ['spiral', 'elliptical']
    >>> decode_classes(np.array([1, 0]), [3, 7]).dtype
    dtype('int64')
    """
    names = np.asarray(list(classes), dtype=object if any(isinstance(c, str) for c in classes) else None)
    return names[np.asarray(index).astype(np.int64)]


def shown_classes(values: Sequence[Any] | pd.Series, unlabelled: Iterable[str] = ()) -> np.ndarray:
    """Each row's class as text (N,) object, `UNLABELLED` where it has none: what a map's legend
    or a table shows.

    >>> shown_classes(pd.Series(["spiral", "unknown", None]), ["unknown"]).tolist()
    ['spiral', 'unlabelled', 'unlabelled']
    """
    text = class_text(values)
    text[~_labelled(text, unlabelled)] = UNLABELLED
    return text
