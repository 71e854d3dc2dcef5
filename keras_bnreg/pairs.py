"""Dense/Conv -> BatchNormalization pairs, found from a Keras model's layer graph.

A pair is a `Dense`, `Conv1D` or `Conv2D` layer with a linear activation whose output
feeds only a `BatchNormalization` (Keras's own or any subclass) that normalises the
layer's output channels: then BN's statistics see exactly `w^T x + b` per node or channel,
and alpha, the folded weights and BN's moving-stats estimate are all defined. Pairs come
from the functional graph (`model.operations`, `layer.input`, `layer.output`), never from
positions in `model.layers`, the way aimet folds BN in Keras models.

What cannot be measured is said once, with a `UserWarning` naming the layer and why: an
activation between the layer and BN, BN fed by something else, a layer whose output also
feeds other layers, a shared layer (called more than once), BN over another axis.

- Functional models: the graph as built.
- Sequential models without an `Input`: built on the inputs' shape first (`model.build`,
  which gives them the same graph a Sequential with an `Input` has).
- Subclassed models keep no layer graph. Pairs are looked for inside the functional or
  Sequential sub-models they hold (one warning says so); the data-based alpha of those
  pairs is NaN (what reaches a sub-model is unknown), all other columns are measured.
- A model without any BatchNormalization (the no-BN baseline): every Dense/Conv layer with
  a linear activation is measured, with BN's columns NaN.

The first pair in data-flow order is the model's primary layer (`primary`): the one whose
summaries go unprefixed into the history and whose nodes go to `nodes.csv`. That choice is
made here and nowhere else (`column_prefix`, `nodes_filename`, `history_columns`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import keras

from keras_bnreg import measures

MEASURED_TYPES = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)
CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D)


@dataclass(frozen=True)
class Pair:
    """One measured layer and the BN right after it (None in a model without BN)."""

    name: str  # the Dense/Conv layer's name: the key of every table
    layer: keras.layers.Layer  # Dense, Conv1D or Conv2D
    bn: keras.layers.BatchNormalization | None
    fixed_inputs: bool  # only layers training never changes between the inputs and `layer`
    reachable: bool = True  # its inputs can be computed from the model's inputs

    @property
    def dense(self):
        """The measured layer (the name earlier code used for it)."""
        return self.layer

    @property
    def is_conv(self) -> bool:
        return isinstance(self.layer, CONV_TYPES)


def find_pairs(model, inputs=None) -> list[Pair]:
    """Every measurable Dense/Conv -> BN pair of `model`, in data-flow order.

    Args:
        model: a Keras 3 model (functional, Sequential or subclassed).
        inputs: training inputs; only their shape is used, to build a Sequential model
            that was defined without an `Input` and has not been called symbolically.

    Returns:
        The pairs, first in data flow first.

    Raises:
        ValueError: no measurable pair (the warnings say why each candidate was left out).
    """
    if isinstance(model, keras.Sequential):
        _build_sequential(model, inputs)
    if _has_graph(model):
        found = _graph_pairs(model)
    else:
        found = _subclassed_pairs(model)
    if not found:
        raise ValueError(
            f"model {model.name!r} has no measurable Dense/Conv layer: the monitor needs a "
            "Dense, Conv1D or Conv2D layer (linear activation) whose output feeds only a "
            "BatchNormalization over its channels (see the warnings above). Received: "
            f"layers {[layer.name for layer in model.layers]}"
        )
    return found


def primary(pairs: list[Pair]) -> Pair:
    """The model's primary pair: the first in data flow (the paper's first hidden layer)."""
    return pairs[0]


def column_prefix(name: str, names: list[str]) -> str:
    """History column prefix of layer `name`: none for the primary layer, else `<name>_`."""
    return "" if name == names[0] else f"{name}_"


def nodes_filename(name: str, names: list[str]) -> str:
    """Per-node file of layer `name` in a run directory: `nodes.csv` for the primary one."""
    return "nodes.csv" if name == names[0] else f"nodes_{name}.csv"


def history_columns(names: list[str]) -> list[str]:
    """The monitor's per-epoch summary columns for layers `names` (primary unprefixed)."""
    columns = []
    for name in names:
        prefix = column_prefix(name, names)
        columns += [f"{prefix}{column}_mean" for column in measures.HISTORY_MEANS]
        columns += [f"{prefix}{column}_std" for column in measures.HISTORY_STDS]
    return columns


def _build_sequential(model, inputs) -> None:
    try:
        model.inputs  # noqa: B018  (raises until the Sequential has a symbolic graph)
        return
    except AttributeError:
        pass
    if inputs is None:
        raise ValueError(
            f"Sequential model {model.name!r} has no Input and no graph yet: pass the "
            "training inputs so that it can be built on their shape. Received: inputs=None"
        )
    shape = keras.tree.flatten(inputs)[0].shape
    model.build((None, *shape[1:]))


def _has_graph(model) -> bool:
    try:
        return bool(model.inputs) and bool(_operations(model))
    except AttributeError:
        return False


def _operations(model) -> list:
    """The model's layers in data-flow order (a Sequential's list is that order)."""
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    return list(model.operations)


def _call_count(layer) -> int:
    # Keras 3 has no public way to ask how often a layer was called (get_input_at is gone);
    # a layer called twice has two inbound nodes.
    return len(getattr(layer, "_inbound_nodes", ()))


def _graph_pairs(model) -> list[Pair]:
    operations = _operations(model)
    producer, consumers = {}, {}
    for operation in operations:
        for tensor in keras.tree.flatten(operation.output):
            producer[id(tensor)] = operation
        if isinstance(operation, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(operation.input):
            consumers.setdefault(id(tensor), []).append(operation.name)
    for tensor in keras.tree.flatten(model.outputs):
        consumers.setdefault(id(tensor), []).append("the model's output")
    model_inputs = {id(tensor) for tensor in keras.tree.flatten(model.inputs)}
    has_bn = any(isinstance(op, keras.layers.BatchNormalization) for op in operations)
    shared = [op.name for op in operations if _call_count(op) > 1]
    found = []
    for operation in operations:
        if has_bn and isinstance(operation, keras.layers.BatchNormalization):
            source = producer.get(id(operation.input))
            reason = _bn_pair_problem(operation, source, producer, consumers, shared)
            if reason:
                _warn(f"BatchNormalization {operation.name!r} not measured: {reason}")
                continue
            found.append((source, operation))
        elif not has_bn and isinstance(operation, MEASURED_TYPES):
            reason = _layer_problem(operation)
            if reason:
                _warn(f"layer {operation.name!r} not measured: {reason}")
                continue
            found.append((operation, None))
    order = {id(operation): index for index, operation in enumerate(operations)}
    found.sort(key=lambda pair: order[id(pair[0])])
    return [
        Pair(layer.name, layer, bn, _fixed_inputs(layer, producer, model_inputs))
        for layer, bn in found
    ] + _nested_pairs(model, [op for op in operations if isinstance(op, keras.Model)])


def _layer_problem(layer) -> str | None:
    """Why `layer`'s pre-activation `w^T x` cannot be measured, or None."""
    if _call_count(layer) > 1:
        return f"it is shared (called {_call_count(layer)} times), so its inputs are ambiguous"
    activation = getattr(layer.activation, "__name__", str(layer.activation))
    if activation != "linear":
        return (
            f"it applies activation {activation!r} itself, so its output is not w^T x + b "
            "(put the activation in a layer of its own after BN)"
        )
    return None


def _bn_pair_problem(bn, source, producer, consumers, shared) -> str | None:
    if _call_count(bn) > 1:
        return f"it is shared (called {_call_count(bn)} times)"
    if source is None and shared:
        return f"it is fed by a later call of a shared layer (called more than once: {shared})"
    if not isinstance(source, MEASURED_TYPES):
        kind = "nothing known" if source is None else f"{source.name!r} ({type(source).__name__})"
        text = f"it is fed by {kind}, not by a Dense, Conv1D or Conv2D layer"
        before = None if source is None else producer.get(id(keras.tree.flatten(source.input)[0]))
        if isinstance(before, MEASURED_TYPES):
            text += f": an activation or other layer sits between {before.name!r} and BN"
        return text
    problem = _layer_problem(source)
    if problem:
        return f"its input layer {source.name!r}: {problem}"
    others = [name for name in consumers.get(id(source.output), []) if name != bn.name]
    if others:
        return f"{source.name!r} also feeds {', '.join(others)}, not only BN"
    rank = len(source.output.shape)
    channel_axis = rank - 1 if getattr(source, "data_format", None) != "channels_first" else 1
    if bn.axis % rank != channel_axis:
        return f"it normalises axis {bn.axis}, not {source.name!r}'s channel axis {channel_axis}"
    return None


def _fixed_inputs(layer, producer, model_inputs) -> bool:
    """True when every layer between the model's inputs and `layer` has no weights, or only
    weights that training never changes (a layer that says so: `constant_in_training`, as
    `layers.InputScaling` does)."""
    pending = list(keras.tree.flatten(layer.input))
    seen = set()
    while pending:
        tensor = pending.pop()
        if id(tensor) in seen or id(tensor) in model_inputs:
            continue
        seen.add(id(tensor))
        operation = producer.get(id(tensor))
        if operation is None or (
            operation.weights and not getattr(operation, "constant_in_training", False)
        ):
            return False
        if not isinstance(operation, keras.layers.InputLayer):
            pending += keras.tree.flatten(operation.input)
    return True


def _subclassed_pairs(model) -> list[Pair]:
    submodels = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    found = _nested_pairs(model, submodels, warn=False)
    _warn(
        f"model {model.name!r} is subclassed: Keras keeps no layer graph for it, so pairs are "
        f"looked for only inside its functional/Sequential sub-models "
        f"({[pair.name for pair in found] or 'none found'}); their data-based alpha is not "
        "measured (NaN), the weights, gamma, beta and alpha_moving are. Build the model "
        "functionally to measure everything."
    )
    return found


def _nested_pairs(model, submodels, warn=True) -> list[Pair]:
    """Pairs inside sub-models: what reaches them is not traced, so alpha is left out."""
    found = []
    for submodel in submodels:
        if _has_graph(submodel):
            found += [
                Pair(pair.name, pair.layer, pair.bn, False, reachable=False)
                for pair in _graph_pairs(submodel)
            ]
    if warn and found:
        _warn(
            f"model {model.name!r} holds sub-models: their pairs "
            f"{[pair.name for pair in found]} are measured without their data-based alpha "
            "(NaN; what reaches a sub-model is not traced)"
        )
    return found


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)
