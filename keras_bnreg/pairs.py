"""Dense/Conv -> BatchNormalization pairs, found from a Keras model's layer graph.

A pair is a `Dense`, `Conv1D` or `Conv2D` layer with a linear activation whose output
feeds only a `BatchNormalization` (Keras's own or any subclass) that normalises the
layer's output channels: then BN's statistics see exactly `w^T x + b` per node or channel,
and alpha, the folded weights and BN's moving-stats estimate are all defined. Pairs come
from the model's own graph: the nodes (layer calls) reached from `model.outputs` back to
`model.inputs`, never from positions in `model.layers` nor from `layer.input`, which is a
layer's *first* call: a Sequential model rebuilt when loaded from a file has called each of
its layers several times, in graphs it no longer uses.

What cannot be measured is said once, with a `UserWarning` naming the layer and why: an
activation between the layer and BN, BN fed by something else, a layer whose output also
feeds other layers, a shared layer (called more than once in the model's graph), BN over
another axis.

- Functional models: the graph as built.
- Sequential models without an `Input`: built on the inputs' shape first (`model.build`,
  which gives them the same graph a Sequential with an `Input` has).
- Subclassed models keep no layer graph. Pairs are looked for inside the functional or
  Sequential sub-models they hold (one warning says so); the data-based alpha of those
  pairs is NaN (what reaches a sub-model is unknown), all other columns are measured.
- A model without any BatchNormalization (the no-BN baseline): every Dense/Conv layer with
  a linear activation is measured, with BN's columns NaN.

A pair's key (`Pair.name`, the key of every table and history column) is its layer's name,
or, where that name is not unique among the pairs (nested models can repeat names), its path
through the sub-models, `block_1/dense`. `include` / `exclude` choose pairs by key or path,
with shell-style patterns (`fnmatch`: `conv*`, `block_?/dense`).

The first pair in data-flow order is the model's primary layer (`primary`): the one whose
summaries go unprefixed into the history and whose nodes go to `nodes.csv`. That choice is
made here and nowhere else (`column_prefix`, `nodes_filename`, `history_columns`).
"""

from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass

import keras

from keras_bnreg import measures

MEASURED_TYPES = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)
CONV_TYPES = (keras.layers.Conv1D, keras.layers.Conv2D)


@dataclass(frozen=True)
class Pair:
    """One measured layer and the BN right after it (None in a model without BN)."""

    name: str  # the key of every table: the layer's name, or its path when names repeat
    layer: keras.layers.Layer  # Dense, Conv1D or Conv2D
    bn: keras.layers.BatchNormalization | None
    fixed_inputs: bool  # only layers training never changes between the inputs and `layer`
    reachable: bool = True  # its inputs can be computed from the model's inputs
    input: object = None  # the tensor entering `layer` in the model's graph
    output: object = None  # `layer`'s output in the model's graph
    path: str = ""  # sub-model names and the layer's name, joined by "/"

    @property
    def dense(self):
        """The measured layer (the name earlier code used for it)."""
        return self.layer

    @property
    def is_conv(self) -> bool:
        return isinstance(self.layer, CONV_TYPES)


def find_pairs(model, input_shape=None, include=None, exclude=None) -> list[Pair]:
    """Every measurable Dense/Conv -> BN pair of `model`, in data-flow order.

    Args:
        model: a Keras 3 model (functional, Sequential or subclassed).
        input_shape: the shape of a batch of inputs; only used to build a Sequential model
            that was defined without an `Input` and has not been called symbolically.
        include: keys, paths or patterns of the pairs to measure (default: all); each must
            match a measurable layer.
        exclude: keys, paths or patterns of pairs to leave out.

    Returns:
        The pairs, first in data flow first.

    Raises:
        ValueError: no measurable pair (the warnings say why each candidate was left out),
            or an `include` pattern that matches none.
    """
    include, exclude = patterns(include, "include"), patterns(exclude, "exclude")
    if isinstance(model, keras.Sequential):
        _build_sequential(model, input_shape)
    problems = []  # (message, name, path of the Dense/Conv layer it is about, or None)
    if _has_graph(model):
        found = _graph_pairs(model, "", problems)
    else:
        found = _subclassed_pairs(model, problems)
    found = _keyed(found)
    chosen = [pair for pair in found if _chosen(pair.name, pair.path, include, exclude)]
    for message, name, path in problems:  # only about layers the caller wants measured
        if name is None or _chosen(name, path, include, exclude):
            warnings.warn(message, UserWarning, stacklevel=2)
    for pattern in include or ():
        if not any(_matches(pair.name, pair.path, pattern) for pair in found):
            raise ValueError(
                f"include pattern {pattern!r} matches no measurable layer of model "
                f"{model.name!r}. Measurable: {[pair.name for pair in found]}"
            )
    if not chosen:
        raise ValueError(
            f"model {model.name!r} has no measurable Dense/Conv layer"
            + (" left after include/exclude" if found else "")
            + ": the monitor needs a Dense, Conv1D or Conv2D layer (linear activation) whose "
            "output feeds only a BatchNormalization over its channels (see the warnings "
            f"above). Received: layers {[layer.name for layer in model.layers]}"
        )
    return chosen


def patterns(value, name) -> tuple[str, ...] | None:
    """`include` / `exclude` as a tuple of strings (None: not given).

    Raises:
        ValueError: anything but a string or a list of strings.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(
        f"{name} must be a layer name or pattern, or a list of them. Received: {value!r}"
    )


def primary(pairs: list[Pair]) -> Pair:
    """The model's primary pair: the first in data flow (the paper's first hidden layer)."""
    return pairs[0]


def column_prefix(name: str, names: list[str]) -> str:
    """History column prefix of layer `name`: none for the primary layer, else `<name>_`."""
    return "" if name == names[0] else f"{name}_"


def nodes_filename(name: str, names: list[str]) -> str:
    """Per-node file of layer `name` in a run directory: `nodes.csv` for the primary one,
    `nodes_<name>.csv` for the others ("/" of a path written ".")."""
    return "nodes.csv" if name == names[0] else f"nodes_{name.replace('/', '.')}.csv"


def history_columns(names: list[str]) -> list[str]:
    """The monitor's per-epoch summary columns for layers `names` (primary unprefixed)."""
    columns = []
    for name in names:
        prefix = column_prefix(name, names)
        columns += [f"{prefix}{column}_mean" for column in measures.HISTORY_MEANS]
        columns += [f"{prefix}{column}_std" for column in measures.HISTORY_STDS]
    return columns


def _build_sequential(model, input_shape) -> None:
    try:
        model.inputs  # noqa: B018  (raises until the Sequential has a symbolic graph)
        return
    except AttributeError:
        pass
    if input_shape is None:
        raise ValueError(
            f"Sequential model {model.name!r} has no Input and no graph yet: pass the "
            "training inputs so that it can be built on their shape. Received: inputs=None"
        )
    model.build((None, *tuple(input_shape)[1:]))


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


class _Graph:
    """The nodes of a model's own graph: what each layer call consumed and produced.

    Walks from `model.outputs` back to `model.inputs` through each tensor's Keras history
    (the node, i.e. the call, that produced it), so calls made in other graphs (an earlier
    build of a Sequential, another model sharing the layer) are not counted.
    """

    def __init__(self, model):
        self.inputs = {id(tensor) for tensor in keras.tree.flatten(model.inputs)}
        self.producer, self.consumers, self.calls, self.node = {}, {}, {}, {}
        self.producer_node = {}
        pending, seen = list(keras.tree.flatten(model.outputs)), set()
        for tensor in pending:
            self.consumers.setdefault(id(tensor), []).append("the model's output")
        while pending:
            tensor = pending.pop()
            history = getattr(tensor, "_keras_history", None)
            if id(tensor) in self.inputs or history is None or history.operation is None:
                continue
            node = history.operation._inbound_nodes[history.node_index]
            if id(node) in seen:
                continue
            seen.add(id(node))
            operation = node.operation
            self.calls[id(operation)] = self.calls.get(id(operation), 0) + 1
            self.node.setdefault(id(operation), node)
            for output in node.outputs:
                self.producer[id(output)] = operation
                self.producer_node[id(output)] = node
            for source in node.input_tensors:
                self.consumers.setdefault(id(source), []).append(operation.name)
                pending.append(source)

    def input(self, operation):
        """The (first) tensor entering `operation` in this graph."""
        return self.node[id(operation)].input_tensors[0]

    def output(self, operation):
        return self.node[id(operation)].outputs[0]


def _graph_pairs(model, prefix, problems) -> list[Pair]:
    graph = _Graph(model)
    operations = [op for op in _operations(model) if id(op) in graph.node]
    has_bn = any(isinstance(op, keras.layers.BatchNormalization) for op in operations)
    found = []
    for operation in operations:
        if has_bn and isinstance(operation, keras.layers.BatchNormalization):
            source = graph.producer.get(id(graph.input(operation)))
            reason = _bn_pair_problem(operation, source, graph)
            if reason:
                subject = source if isinstance(source, MEASURED_TYPES) else None
                message = f"BatchNormalization {operation.name!r} not measured: {reason}"
                _problem(problems, message, subject, prefix)
                continue
            found.append((source, operation))
        elif not has_bn and isinstance(operation, MEASURED_TYPES):
            reason = _layer_problem(operation, graph)
            if reason:
                message = f"layer {operation.name!r} not measured: {reason}"
                _problem(problems, message, operation, prefix)
                continue
            found.append((operation, None))
    order = {id(operation): index for index, operation in enumerate(operations)}
    found.sort(key=lambda pair: order[id(pair[0])])
    pairs = [
        Pair(
            layer.name,
            layer,
            bn,
            _fixed_inputs(graph.input(layer), graph),
            input=graph.input(layer),
            output=graph.output(layer),
            path=prefix + layer.name,
        )
        for layer, bn in found
    ]
    submodels = [op for op in operations if isinstance(op, keras.Model)]
    return pairs + _nested_pairs(model, submodels, prefix, problems)


def _layer_problem(layer, graph) -> str | None:
    """Why `layer`'s pre-activation `w^T x` cannot be measured, or None."""
    calls = graph.calls.get(id(layer), 0)
    if calls > 1:
        return f"it is shared (called {calls} times), so its inputs are ambiguous"
    activation = getattr(layer.activation, "__name__", str(layer.activation))
    if activation != "linear":
        return (
            f"it applies activation {activation!r} itself, so its output is not w^T x + b "
            "(put the activation in a layer of its own after BN)"
        )
    return None


def _bn_pair_problem(bn, source, graph) -> str | None:
    if graph.calls[id(bn)] > 1:
        return f"it is shared (called {graph.calls[id(bn)]} times)"
    if not isinstance(source, MEASURED_TYPES):
        kind = "nothing known" if source is None else f"{source.name!r} ({type(source).__name__})"
        text = f"it is fed by {kind}, not by a Dense, Conv1D or Conv2D layer"
        before = None if source is None else graph.producer.get(id(graph.input(source)))
        if isinstance(before, MEASURED_TYPES):
            text += f": an activation or other layer sits between {before.name!r} and BN"
        return text
    problem = _layer_problem(source, graph)
    if problem:
        return f"its input layer {source.name!r}: {problem}"
    output = graph.output(source)
    others = [name for name in graph.consumers.get(id(output), []) if name != bn.name]
    if others:
        return f"{source.name!r} also feeds {', '.join(others)}, not only BN"
    rank = len(output.shape)
    channel_axis = rank - 1 if getattr(source, "data_format", None) != "channels_first" else 1
    if bn.axis % rank != channel_axis:
        return f"it normalises axis {bn.axis}, not {source.name!r}'s channel axis {channel_axis}"
    return None


def _fixed_inputs(tensor, graph) -> bool:
    """True when every layer between the model's inputs and `tensor` has no weights, or only
    weights that training never changes (a layer that says so: `constant_in_training`, as
    `layers.InputScaling` does)."""
    pending, seen = [tensor], set()
    while pending:
        tensor = pending.pop()
        if id(tensor) in seen or id(tensor) in graph.inputs:
            continue
        seen.add(id(tensor))
        node = graph.producer_node.get(id(tensor))
        if node is None or (
            node.operation.weights and not getattr(node.operation, "constant_in_training", False)
        ):
            return False
        pending += node.input_tensors
    return True


def _subclassed_pairs(model, problems) -> list[Pair]:
    submodels = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    found = _nested_pairs(model, submodels, "", problems, warn=False)
    _problem(
        problems,
        f"model {model.name!r} is subclassed: Keras keeps no layer graph for it, so pairs are "
        f"looked for only inside its functional/Sequential sub-models "
        f"({[pair.path for pair in found] or 'none found'}); their data-based alpha is not "
        "measured (NaN), the weights, gamma, beta and alpha_moving are. Build the model "
        "functionally to measure everything.",
    )
    return found


def _nested_pairs(model, submodels, prefix, problems, warn=True) -> list[Pair]:
    """Pairs inside sub-models: what reaches them is not traced, so alpha is left out."""
    found = []
    for submodel in submodels:
        if _has_graph(submodel):
            found += [
                Pair(
                    pair.name,
                    pair.layer,
                    pair.bn,
                    False,
                    reachable=False,
                    input=pair.input,
                    output=pair.output,
                    path=pair.path,
                )
                for pair in _graph_pairs(submodel, f"{prefix}{submodel.name}/", problems)
            ]
    if warn and found:
        _problem(
            problems,
            f"model {model.name!r} holds sub-models: their pairs "
            f"{[pair.path for pair in found]} are measured without their data-based alpha "
            "(NaN; what reaches a sub-model is not traced)",
        )
    return found


def _keyed(found: list[Pair]) -> list[Pair]:
    """Each pair keyed by its layer's name, or by its path where names repeat."""
    names = [pair.layer.name for pair in found]
    return [
        Pair(
            pair.path if names.count(pair.layer.name) > 1 else pair.layer.name,
            pair.layer,
            pair.bn,
            pair.fixed_inputs,
            pair.reachable,
            pair.input,
            pair.output,
            pair.path,
        )
        for pair in found
    ]


def _matches(name, path, pattern) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(path, pattern)


def _chosen(name, path, include, exclude) -> bool:
    """Whether the layer of key `name` and `path` is selected by `include` and `exclude`."""
    if include is not None and not any(_matches(name, path, p) for p in include):
        return False
    return not (exclude and any(_matches(name, path, p) for p in exclude))


def _problem(problems, message, layer=None, prefix="") -> None:
    """Keep a warning about `layer` (a Dense/Conv layer, or None) for `find_pairs`."""
    if layer is None:
        problems.append((message, None, None))
    else:
        problems.append((message, layer.name, prefix + layer.name))
