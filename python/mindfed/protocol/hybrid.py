"""The hybrid worker's messages (spec §11.1): MindSpore's FlatBuffers tables RequestPullWeight / ResponsePullWeight,
RequestPushWeight / ResponsePushWeight and RequestPushMetrics / ResponsePushMetrics, and the node-transport frame
type each travels under.

The tables are MindSpore's byte for byte; the framing is ours (the C++ node transport's frames, a type per command,
instead of MindSpore's MessageMeta protobuf with a `user_cmd`): workers only ever talk to mindfed servers. A refusal
before the round runs (safemode, job disabled or finished) is one of the plain texts of protocol.plain_text, as
MindSpore's worker expects; everything else is the response table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mindfed.protocol.generated import RequestPullWeight as RplwGen
from mindfed.protocol.generated import RequestPushWeight as RpswGen
from mindfed.protocol.generated import ResponsePullWeight as SplwGen
from mindfed.protocol.generated import ResponsePushWeight as SpswGen
from mindfed.protocol.generated.RequestPullWeight import RequestPullWeight
from mindfed.protocol.generated.RequestPushWeight import RequestPushWeight
from mindfed.protocol.generated.ResponsePullWeight import ResponsePullWeight
from mindfed.protocol.generated.ResponsePushWeight import ResponsePushWeight
from mindfed.protocol.reader import Buffer, feature_map, string_list, text
from mindfed.protocol.verifier import verify
from mindfed.protocol.views import NamedTensor
from mindfed.protocol.writer import Weights, feature_maps, finish, new_builder, payload_size, string_vector

# Node-transport frame types of the worker's requests (the servers' own use 1 and 2, server/peers.py). MindSpore's
# TcpUserCommand numbers them 0 pullWeight, 1 pushWeight, 5 pushMetrics; ours sit in a range of their own.
PULL_WEIGHT = 16
PUSH_WEIGHT = 17
PUSH_METRICS = 18
WORKER_FRAME_TYPES = frozenset({PULL_WEIGHT, PUSH_WEIGHT, PUSH_METRICS})
ROUND_OF_FRAME = {PULL_WEIGHT: "pullWeight", PUSH_WEIGHT: "pushWeight", PUSH_METRICS: "pushMetrics"}


@dataclass(frozen=True, slots=True)
class PullWeightRequest:
    """A parsed RequestPullWeight: the worker's iteration and the weights it asks for."""

    iteration: int
    weight_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PushWeightRequest:
    """A parsed RequestPushWeight; tensors are zero-copy views into the request buffer."""

    iteration: int
    feature_map: tuple[NamedTensor, ...]


@dataclass(frozen=True, slots=True)
class WeightsResponse:
    """A parsed ResponsePullWeight or ResponsePushWeight (the latter has no feature map)."""

    retcode: int
    reason: str
    iteration: int
    feature_map: tuple[NamedTensor, ...] = ()


def build_request_pull_weight(iteration: int, weight_names: Sequence[str]) -> bytes:
    """Builds a RequestPullWeight (the worker asks for the iteration's aggregate)."""
    builder = new_builder(sum(len(n) + 16 for n in weight_names))
    names = string_vector(builder, weight_names)
    RplwGen.RequestPullWeightStart(builder)
    RplwGen.RequestPullWeightAddIteration(builder, iteration)
    RplwGen.RequestPullWeightAddWeightNames(builder, names)
    return finish(builder, RplwGen.RequestPullWeightEnd(builder))


def parse_request_pull_weight(buf: Buffer) -> PullWeightRequest:
    """Parses a RequestPullWeight.

    Raises:
        ProtocolError: "The schema of RequestPullWeight is invalid."
    """
    table = "RequestPullWeight"
    verify(buf, table)
    req = RequestPullWeight.GetRootAs(buf, 0)
    return PullWeightRequest(req.Iteration(), string_list(req.WeightNamesLength(), req.WeightNames, table))


def build_response_pull_weight(retcode: int, reason: str, iteration: int, feature_map: Weights) -> bytes:
    """Builds a ResponsePullWeight; `feature_map` is empty unless retcode is SUCCEED."""
    builder = new_builder(payload_size(feature_map) + len(reason))
    maps = feature_maps(builder, feature_map)
    reason_off = builder.CreateString(reason)
    SplwGen.ResponsePullWeightStart(builder)
    SplwGen.ResponsePullWeightAddRetcode(builder, retcode)
    SplwGen.ResponsePullWeightAddReason(builder, reason_off)
    SplwGen.ResponsePullWeightAddIteration(builder, iteration)
    SplwGen.ResponsePullWeightAddFeatureMap(builder, maps)
    return finish(builder, SplwGen.ResponsePullWeightEnd(builder))


def parse_response_pull_weight(buf: Buffer) -> WeightsResponse:
    """Parses a ResponsePullWeight; tensors are views into `buf`.

    Raises:
        ProtocolError: "The schema of ResponsePullWeight is invalid."
    """
    table = "ResponsePullWeight"
    verify(buf, table)
    rsp = ResponsePullWeight.GetRootAs(buf, 0)
    return WeightsResponse(rsp.Retcode(), text(rsp.Reason(), table), rsp.Iteration(),
                           feature_map(rsp, table))


def build_request_push_weight(iteration: int, feature_map: Weights) -> bytes:
    """Builds a RequestPushWeight (the worker's retrained weights for `iteration`)."""
    builder = new_builder(payload_size(feature_map))
    maps = feature_maps(builder, feature_map)
    RpswGen.RequestPushWeightStart(builder)
    RpswGen.RequestPushWeightAddIteration(builder, iteration)
    RpswGen.RequestPushWeightAddFeatureMap(builder, maps)
    return finish(builder, RpswGen.RequestPushWeightEnd(builder))


def parse_request_push_weight(buf: Buffer) -> PushWeightRequest:
    """Parses a RequestPushWeight; tensors are views into `buf` (keep it alive while they are used).

    Raises:
        ProtocolError: "The schema of RequestPushWeight is invalid."
    """
    table = "RequestPushWeight"
    verify(buf, table)
    req = RequestPushWeight.GetRootAs(buf, 0)
    return PushWeightRequest(req.Iteration(), feature_map(req, table))


def build_response_push_weight(retcode: int, reason: str, iteration: int) -> bytes:
    """Builds a ResponsePushWeight."""
    builder = new_builder(len(reason))
    reason_off = builder.CreateString(reason)
    SpswGen.ResponsePushWeightStart(builder)
    SpswGen.ResponsePushWeightAddRetcode(builder, retcode)
    SpswGen.ResponsePushWeightAddReason(builder, reason_off)
    SpswGen.ResponsePushWeightAddIteration(builder, iteration)
    return finish(builder, SpswGen.ResponsePushWeightEnd(builder))


def parse_response_push_weight(buf: Buffer) -> WeightsResponse:
    """Parses a ResponsePushWeight.

    Raises:
        ProtocolError: "The schema of ResponsePushWeight is invalid."
    """
    table = "ResponsePushWeight"
    verify(buf, table)
    rsp = ResponsePushWeight.GetRootAs(buf, 0)
    return WeightsResponse(rsp.Retcode(), text(rsp.Reason(), table), rsp.Iteration())
