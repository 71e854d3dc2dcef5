"""What `model.fit` takes as x, read as NumPy chunks of inputs for the monitor.

The one module that touches Keras's data adapters (`keras.src.trainers.data_adapters`, a
private API: keras is pinned at 3.15.1). Keras's adapters turn each kind of data into NumPy
batches; here they are unpacked to the inputs x (`(x, y[, w])` as `fit` reads them),
regrouped into chunks of a given number of rows and cut at `max_samples`.

Taken, as `model.fit` takes them: NumPy arrays or tensors (or a list/dict of them, one per
model input), a `tf.data.Dataset` (batched or not), a `keras.utils.PyDataset`, a Python
generator of `(x,)`, `(x, y)` or `(x, y, w)` tuples, a function that returns such a
generator, and a `torch.utils.data.DataLoader`.

Reading never disturbs the pipeline `fit` reads:

- a `tf.data.Dataset` is read through a copy of its graph without its `shuffle` steps (the
  order does not change a moment): iterating a shuffling dataset draws its next order from
  a shared seed generator, so an extra pass would change the order of fit's later epochs.
  A dataset whose graph cannot be copied (one built on Python code, `from_generator`) is
  read as it is.
- a `torch.utils.data.DataLoader` through a loader of its own over the same dataset, in order
  and with its own random generator (iterating a loader draws from torch's global one).
- a Python generator can be read only once: its inputs (up to `max_samples`) are kept after
  the first pass for the later ones. Give the monitor a generator of its own, or the function
  that makes one (called for every pass): a generator `fit` also reads would lose to the
  monitor the batches the monitor takes.

Random augmentation inside a pipeline is applied on the monitor's pass too: the moments are
those of the augmented inputs, and the pass draws random numbers that a `PyDataset` or
`map` function shares with fit. Give the monitor the pipeline before augmentation to
measure the inputs themselves.
"""

from __future__ import annotations

import sys
import types

import keras
import numpy as np
from keras.src.trainers.data_adapters import (  # private API, used here only
    get_data_adapter,
    is_tf_dataset,
    is_torch_dataloader,
)

EXPECTED = (
    "what model.fit takes as x: NumPy arrays or tensors (or a list/dict of them), a "
    "tf.data.Dataset, a keras.utils.PyDataset, a Python generator of (x,), (x, y) or "
    "(x, y, w) tuples or a function returning one, or a torch DataLoader"
)
_SHUFFLES = ("ShuffleDataset", "ShuffleDatasetV2", "ShuffleDatasetV3")


class TrainingInputs:
    """The inputs x of a data set, read pass after pass as NumPy chunks.

    Args:
        data: what `model.fit` takes as x (see the module's notes).
        max_samples: read at most this many inputs per pass (None: all of them; needed for
            an infinite pipeline). `samples` and `capped` report what a pass read.

    Raises:
        ValueError: data of another kind or structure, or an infinite pipeline without
            `max_samples` (one line, naming what was expected).
    """

    def __init__(self, data, max_samples=None):
        if max_samples is not None and (
            isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1
        ):
            raise ValueError(f"max_samples must be an integer >= 1. Received: {max_samples!r}")
        self.data = data
        self.max_samples = max_samples
        self.kind = _kind(data)
        self.samples = None  # inputs read by the last complete pass
        self.capped = False  # whether that pass stopped at max_samples
        self._kept = None  # a one-shot generator's inputs, after its first pass
        self._readable = {}  # a tf.data.Dataset's copy for reading, made once
        if self.kind in _CHECKS:
            _CHECKS[self.kind](data, max_samples)
        if self.in_memory:  # known without a pass
            count = len(keras.tree.flatten(data)[0])
            self.samples = count if max_samples is None else min(count, max_samples)
            self.capped = max_samples is not None and count > max_samples

    @property
    def in_memory(self) -> bool:
        """NumPy arrays (or tensors): sliced directly, and fingerprinted by the monitor."""
        return self.kind == "arrays"

    def batch_shape(self):
        """The shape of a batch of the (first) input, batch axis first, or None when only a
        pass could tell."""
        if self.in_memory:
            return tuple(keras.tree.flatten(self.data)[0].shape)
        if self.kind == "tf.data":
            x = keras.utils.unpack_x_y_sample_weight(self.data.element_spec)[0]
            shape = tuple(keras.tree.flatten(x)[0].shape)
            return shape if shape and shape[0] is None else None
        return None

    def chunks(self, rows, example_rank=None):
        """The inputs x, in chunks of about `rows` inputs (NumPy; the structure `fit` gives
        the model), at most `max_samples` in all.

        Args:
            rows: inputs per chunk (batches are joined or split to about this many).
            example_rank: rank of one input of the model's (first) input, if known: a
                `tf.data.Dataset` whose x has this rank is unbatched, and is batched here.
        """
        read, capped = 0, False
        pending, pending_rows = [], 0
        for x in self._batches(rows, example_rank):
            length = len(keras.tree.flatten(x)[0])
            if self.max_samples is not None and read + length >= self.max_samples:
                capped = True  # the data may hold more: stopped at max_samples
                x = _rows(x, slice(0, self.max_samples - read))
                length = self.max_samples - read
            for start in range(0, length, rows):  # a batch larger than a chunk: split
                part = _rows(x, slice(start, start + rows)) if length > rows else x
                pending.append(part)
                pending_rows += len(keras.tree.flatten(part)[0])
                if pending_rows >= rows:
                    yield _joined(pending)
                    pending, pending_rows = [], 0
            read += length
            if self.max_samples is not None and read >= self.max_samples:
                break
        if pending:
            yield _joined(pending)
        if read == 0:
            raise ValueError(f"the training inputs ({self.kind}) yielded no input")
        self.samples, self.capped = read, capped

    def _batches(self, rows, example_rank):
        """Batches of x from Keras's adapter for this kind of data."""
        if self._kept is not None:
            yield from self._kept
            return
        if self.kind == "generator":  # read once: what is read is kept for the next passes
            kept = []
            try:
                for x in self._adapter_batches(self.data):
                    kept.append(x)
                    yield x
            finally:
                self._kept = kept
            return
        if self.kind == "arrays":
            yield from self._adapter_batches(self.data, rows=rows)
        elif self.kind == "tf.data":  # its copy: serialising the graph costs a pass's time
            key = (rows, example_rank)
            if key not in self._readable:
                self._readable[key] = _dataset_for_reading(self.data, rows, example_rank)
            yield from self._adapter_batches(self._readable[key])
        elif self.kind == "generator function":
            generator = self.data()
            if not isinstance(generator, types.GeneratorType):
                raise ValueError(
                    f"the function given as training inputs must return a generator. "
                    f"Received: {type(generator).__name__}"
                )
            yield from self._adapter_batches(generator)
        elif self.kind == "DataLoader":
            yield from self._adapter_batches(_loader_for_reading(self.data))
        else:
            yield from self._adapter_batches(self.data)

    def _adapter_batches(self, data, rows=None):
        unpack = self.kind != "arrays"  # a pipeline yields (x, y[, w]); arrays are x
        try:
            adapter = get_data_adapter(data, batch_size=rows, shuffle=False)
        except ValueError as error:
            raise ValueError(f"training inputs: {_first_line(error)}") from None
        try:
            for batch in adapter.get_numpy_iterator():
                x = keras.utils.unpack_x_y_sample_weight(batch)[0] if unpack else batch
                if x is None or not keras.tree.flatten(x):
                    raise ValueError(f"the training inputs yielded no x. Expected {EXPECTED}")
                yield x
        finally:
            enqueuer = getattr(adapter, "enqueuer", None)  # a PyDataset's worker threads
            if enqueuer is not None and enqueuer.is_running():
                enqueuer.stop()


def _check_arrays(data, max_samples):
    leaves = keras.tree.flatten(data)
    shapes = [tuple(getattr(leaf, "shape", ())) for leaf in leaves]
    if any(len(shape) == 0 for shape in shapes):
        raise ValueError(f"training inputs must be arrays with a batch axis. Received {shapes}")
    if len({shape[0] for shape in shapes}) != 1:
        raise ValueError(
            f"training inputs must hold the same number of inputs in every array. "
            f"Received shapes {shapes}"
        )
    if shapes[0][0] == 0:
        raise ValueError("training inputs hold no input. Received: 0 rows")


def _check_dataset(dataset, max_samples):
    import tensorflow as tf  # a tf.data.Dataset was given: TensorFlow is there

    spec = dataset.element_spec
    if isinstance(spec, tuple) and not 1 <= len(spec) <= 3:
        raise ValueError(
            f"a tf.data.Dataset for the monitor must yield x, (x,), (x, y) or (x, y, w). "
            f"Received elements of {len(spec)} parts: {spec}"
        )
    x = keras.utils.unpack_x_y_sample_weight(spec)[0]
    for leaf in keras.tree.flatten(x):
        if not isinstance(leaf, tf.TensorSpec) or not (
            leaf.dtype.is_floating or leaf.dtype.is_integer or leaf.dtype.is_bool
        ):
            raise ValueError(
                f"a tf.data.Dataset for the monitor must yield numeric inputs x. "
                f"Received x of {leaf}"
            )
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY and max_samples is None:
        raise ValueError(
            "the tf.data.Dataset is infinite (repeat()): give max_samples, or the dataset "
            "before repeat()"
        )


def _check_py_dataset(dataset, max_samples):
    if dataset.num_batches is None and max_samples is None:
        raise ValueError("the PyDataset is infinite (num_batches None): give max_samples")


# Checked when given; a generator is not (reading its first batch would take it from
# whoever else reads it), a generator function and a DataLoader when read.
_CHECKS = {"arrays": _check_arrays, "tf.data": _check_dataset, "PyDataset": _check_py_dataset}


def _kind(data) -> str:
    if isinstance(data, keras.utils.PyDataset):
        return "PyDataset"
    if is_tf_dataset(data):
        return "tf.data"
    if is_torch_dataloader(data):
        return "DataLoader"
    if isinstance(data, types.GeneratorType):
        return "generator"
    if callable(data) and not hasattr(data, "shape"):
        return "generator function"
    leaves = keras.tree.flatten(data) if isinstance(data, (list, tuple, dict)) else [data]
    if leaves and all(_is_array(leaf) for leaf in leaves):
        return "arrays"
    raise ValueError(f"training inputs must be {EXPECTED}. Received: {type(data).__name__}")


def _is_array(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    return hasattr(value, "shape") and hasattr(value, "__array__")


def _rows(x, window):
    return keras.tree.map_structure(lambda array: array[window], x)


def _joined(parts):
    if len(parts) == 1:
        return parts[0]
    return keras.tree.map_structure(lambda *arrays: np.concatenate(arrays), *parts)


def _first_line(error) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _dataset_for_reading(dataset, rows, example_rank):
    """The dataset without its shuffles (a copy of its graph), batched if it is not."""
    dataset = _unshuffled(dataset)
    x = keras.utils.unpack_x_y_sample_weight(dataset.element_spec)[0]
    if example_rank is not None and len(keras.tree.flatten(x)[0].shape) == example_rank:
        dataset = dataset.batch(rows)
    return dataset


def _unshuffled(dataset):
    """A copy of `dataset`'s graph with every shuffle step removed; `dataset` itself when its
    graph cannot be serialised (Python functions) or it holds no shuffle."""
    import tensorflow as tf
    from tensorflow.core.framework import graph_pb2

    try:
        graph = graph_pb2.GraphDef()
        graph.ParseFromString(dataset._as_serialized_graph().numpy())
    except Exception:  # noqa: BLE001 (from_generator, py_function: read as it is)
        return dataset
    source = {node.name: node.input[0] for node in graph.node if node.op in _SHUFFLES}
    if not source:
        return dataset

    def unshuffled_input(name):
        while name in source:
            name = source[name]
        return name

    kept = [node for node in graph.node if node.op not in _SHUFFLES]
    for node in kept:
        node.input[:] = [unshuffled_input(name) for name in node.input]
    del graph.node[:]
    graph.node.extend(kept)
    variant = tf.raw_ops.DatasetFromGraph(graph_def=graph.SerializeToString())
    return tf.data.experimental.from_variant(variant, dataset.element_spec)


def _loader_for_reading(loader):
    """A DataLoader over the same dataset, in order, drawing from a generator of its own."""
    torch = sys.modules["torch"]  # a DataLoader was given: its user's torch is loaded

    if loader.batch_size is None:  # a batch sampler of the user's: read as it is
        return loader
    return torch.utils.data.DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        shuffle=False,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=False,
        drop_last=False,
        worker_init_fn=loader.worker_init_fn,
        generator=torch.Generator().manual_seed(0),
    )
