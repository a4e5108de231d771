"""Which catalog columns are labels, and of which kind: the one place that reads it from the config.

The training monitor, the report card, the probes and the baselines all ask here, so a survey
labelled only with, say, a 0/1 ``ring`` flag or a class column is monitored, probed and scored as
one with ``z_spec`` and ``p_features`` is. The kinds:

- ``redshift``: `[probes] redshift`, spectroscopic redshifts (scored by sigma_MAD);
- ``fraction``: each `[probes] morphology` column, vote fractions or 0/1 flags in [0, 1] (read as
  value > 0.5);
- ``categorical``: each `[probes] categorical` column, classes (`galexplore.labels`).

A `[trust] labels` column that none of these lists is a label too: a fraction where its labelled
values lie in [0, 1] (a flag, or a share of votes), and otherwise a number no probe here reads
(trust still uses it). Its kind needs the values, so `label_columns` takes the catalog.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from galexplore.config.schema import Config

REDSHIFT, FRACTION, CATEGORICAL = "redshift", "fraction", "categorical"
KINDS = (REDSHIFT, FRACTION, CATEGORICAL)


class LabelColumn(NamedTuple):
    """A catalog column that holds a label, and its kind (one of `KINDS`)."""

    column: str
    kind: str


def declared_labels(config: Config) -> list[LabelColumn]:
    """The label columns the config's `[probes]` declares, each once, in the order declared: the
    redshift, the morphology columns, the class columns.

    >>> from galexplore.config import config_from_dict
    >>> [tuple(label) for label in declared_labels(config_from_dict({"probes": {"morphology": ["ring"]}}))]
    [('z_spec', 'redshift'), ('ring', 'fraction')]
    """
    probes = config.probes
    return [LabelColumn(probes.redshift, REDSHIFT), *(LabelColumn(c, FRACTION) for c in probes.morphology),
            *(LabelColumn(c, CATEGORICAL) for c in probes.categorical)]


def label_columns(config: Config, catalog: Any) -> list[LabelColumn]:
    """The label columns of `catalog` (a DataFrame) and their kinds: those `declared_labels` names
    that the catalog holds, then each `[trust] labels` column not among them whose labelled values
    lie in [0, 1] (a fraction).

    >>> import pandas as pd
    >>> from galexplore.config import config_from_dict
    >>> config = config_from_dict({"trust": {"labels": {"ring": "ring", "mass": "log_mass"}}})
    >>> label_columns(config, pd.DataFrame({"ring": [0.0, 1.0, None], "log_mass": [10.2, 9.8, 11.0]}))
    [LabelColumn(column='ring', kind='fraction')]
    """
    found = [label for label in declared_labels(config) if label.column in catalog]
    named = {label.column for label in declared_labels(config)}
    for column in dict.fromkeys(config.trust.labels.values()):
        if column not in named and column in catalog and _fractions(catalog[column]):
            found.append(LabelColumn(column, FRACTION))
    return found


def _fractions(values: Any) -> bool:
    """Whether a column's finite values (there are some) all lie in [0, 1]."""
    import numpy as np
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    finite = numbers[np.isfinite(numbers)]
    return len(finite) > 0 and bool(((finite >= 0) & (finite <= 1)).all())
