"""Kept for the old import path (`from fgvctune.models.weights import import_weights, Reference`): the
conversion of PyTorch weight files lives in fgvctune.weights.convert."""

from fgvctune.weights.convert import (  # noqa: F401
    CHECK_INPUT,
    CONVERTER_VERSION,
    TOLERANCE,
    Check,
    Conversion,
    Inspection,
    Reference,
    compare,
    converted_checkpoint,
    import_weights,
    inspect_weights,
    source_model,
    torch_reference,
)
