"""The initial model of a server process: a model file, else the seed's LeNet-5, with the weights never aggregated.

A recovery checkpoint and a running cluster's model override its values later (`ServerNode.start`); its names,
shapes and `require_aggr` flags are what the server declares to the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

from mindfed.errors import ConfigError
from mindfed.model.formats import load_weights
from mindfed.model.lenet import init_lenet5
from mindfed.model.weights import ModelWeights


def initial_model(path: str, num_classes: int, num_channels: int, no_aggr: Sequence[str] = ()) -> ModelWeights:
    """The weights of `path` (any format of `load_weights`), else LeNet-5(num_classes, num_channels) initialised in
    numpy; the weights named in `no_aggr` are sent to devices but never aggregated (MindSpore's require_aggr=False).

    Raises:
        ConfigError: a LeNet-5 size below 1, or a `no_aggr` name the model does not have.
        ModelFormatError: a model file that cannot be read.
    """
    if path:
        model = load_weights(path)
    else:
        try:
            model = init_lenet5(num_classes, num_channels)
        except ValueError as exc:
            raise ConfigError(f"--num_classes/--num_channels: {exc}") from exc
    unknown = sorted(set(no_aggr) - set(model.names))
    if unknown:
        raise ConfigError(f"--no_aggr names weights the model does not have: {unknown}; it has {model.names}")
    return ModelWeights(dict(model.items()), require_aggr={n: n not in no_aggr for n in model.names})
