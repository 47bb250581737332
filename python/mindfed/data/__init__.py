"""Device-side datasets: LEAF FEMNIST shards and the bundled scikit-learn digits."""

from mindfed.data.device_data import DeviceData
from mindfed.data.digits import FederatedDataset, load_federated_digits
from mindfed.data.dirichlet_split import dirichlet_split
from mindfed.data.femnist import load_leaf_femnist, write_leaf_shard

__all__ = ["DeviceData", "FederatedDataset", "dirichlet_split", "load_federated_digits",
           "load_leaf_femnist", "write_leaf_shard"]
