"""Where plug-in adapters written for the flat layout import the adapter contract from.

New adapters import it from the package itself (`from fgvctune import Listing, Problem, Sample`);
this path keeps working so that published plug-ins need no change.
"""

from fgvctune.data.dataset import (  # noqa: F401
    IMAGE_EXTENSIONS,
    LABELS_FILE,
    LabelMap,
    Listing,
    Problem,
    Sample,
    load_dataset,
)
