"""Running a network over a loader and scoring its logits."""

from __future__ import annotations

import numpy as np


def top_k(num_classes: int) -> int:
    return min(5, num_classes)


def predict(network, loader, batch_size: int, views=None):
    """Logits and labels for every sample of a loader, in loader order.

    The last partial batch is padded to the full batch size and the padding cut off again, so a
    compiled network sees one shape and no sample is dropped. `views` turns a batch into the batches
    a test-time augmentation scores (one forward pass each); then the logits are a list, one per view.
    """
    import mindspore as ms

    network.set_train(False)
    all_logits, all_labels = [], []
    for images, labels in loader.create_tuple_iterator(output_numpy=True, num_epochs=1):
        count = images.shape[0]
        if count < batch_size:
            pad = np.zeros((batch_size - count,) + images.shape[1:], dtype=images.dtype)
            images = np.concatenate([images, pad])
        batch_views = views(images) if views else [images]
        all_logits.append([network(ms.Tensor(v)).asnumpy()[:count].astype(np.float32) for v in batch_views])
        all_labels.append(labels.argmax(axis=1) if labels.ndim == 2 else labels)
    if not all_logits:
        empty = np.zeros((0, 0), np.float32)
        return ([empty] if views else empty), np.zeros((0,), np.int64)
    per_view = [np.concatenate(logits) for logits in zip(*all_logits)]
    return (per_view if views else per_view[0]), np.concatenate(all_labels).astype(np.int64)


def correct_at(logits: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many samples have their true label among the k highest logits."""
    if len(labels) == 0:
        return 0
    top = np.argsort(-logits, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())
