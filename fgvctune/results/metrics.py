"""Running a network over a loader and scoring its logits."""

from __future__ import annotations

import numpy as np


def top_k(num_classes: int) -> int:
    return min(5, num_classes)


def predict(network, loader, batch_size: int, distributed=None) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels for every sample of a loader, in loader order.

    The last partial batch is padded to the full batch size and the padding cut off again, so a
    compiled network sees one shape and no sample is dropped.
    """
    import mindspore as ms

    network.set_train(False)
    all_logits, all_labels = [], []
    for images, labels in loader.create_tuple_iterator(output_numpy=True, num_epochs=1):
        count = images.shape[0]
        if count < batch_size:
            pad = np.zeros((batch_size - count,) + images.shape[1:], dtype=images.dtype)
            images = np.concatenate([images, pad])
        logits = network(ms.Tensor(images)).asnumpy()[:count]
        all_logits.append(logits.astype(np.float32))
        all_labels.append(labels.argmax(axis=1) if labels.ndim == 2 else labels)
    if not all_logits:
        return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(all_logits), np.concatenate(all_labels).astype(np.int64)


def correct_at(logits: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many samples have their true label among the k highest logits."""
    if len(labels) == 0:
        return 0
    top = np.argsort(-logits, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())
