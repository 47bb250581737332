"""Device-side clients: the HTTP protocol of a MindSpore Federated device."""

from mindfed.client.device import DeviceClient, PlainText

__all__ = ["DeviceClient", "PlainText"]
