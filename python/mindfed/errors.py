"""The exception tree of mindfed. Imports nothing from mindfed, so every layer (and _core) can use it."""


class MindFedError(Exception):
    """Base of every error mindfed raises on purpose."""


class ConfigError(MindFedError, ValueError):
    """A YAML file, flag or override is invalid; the message names file, dotted key, value and what is allowed."""


class CacheError(MindFedError):
    """The distributed cache (Redis) failed or is unreachable; the message names the operation."""


class CacheAccessError(ConfigError, CacheError):
    """Redis refuses this client for good (authentication, ACL permission, TLS handshake): retrying cannot help, so it
    is a start-up error naming the cause, never a hang. A ConfigError too, since the fix is in the settings."""


class ProtocolError(MindFedError):
    """Bytes from a peer or device do not follow the protocol (malformed FlatBuffers, bad frame)."""


class CryptoError(MindFedError):
    """A cryptographic operation failed (bad key, too few shares)."""


class NetworkError(MindFedError, ConnectionError):
    """A node-to-node connection failed or timed out."""


class RoundClosedError(MindFedError):
    """A request arrived for a round or iteration that is no longer open."""


class ModelFormatError(MindFedError, ValueError):
    """A model file (.ckpt, .safetensors, .npz, torch state_dict) cannot be read or written."""


class PrivacyModeError(MindFedError):
    """A device was told to apply a privacy mode (encrypt_type, eval noise) its SDK cannot apply: it must not
    upload unprotected data instead."""
