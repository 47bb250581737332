"""The model layout every server of a job must share (spec §13): the first server declares it in Redis, later servers
must match it, or they refuse to start with MindSpore's messages."""

from __future__ import annotations

import json
from typing import Any

from mindfed.cache.store import CacheStore, Ttl
from mindfed.errors import ConfigError
from mindfed.model.weights import ModelWeights


def mismatch(local: dict[str, Any], declared: dict[str, Any]) -> str | None:
    """MindSpore's text for the first difference between two ModelInfo JSONs, or None when they agree."""
    ours, theirs = local["features"], declared["features"]
    if len(ours) != len(theirs):  # MindSpore's test: a 2-feature model against 4 declared gets this one
        return (f"The number {len(ours)} of local features != the number {len(theirs)} declared in the the "
                "distributed cache")
    for name in ours:
        if name not in theirs:
            return f"The features are inconsistent with that declared in distributed cache: cannot find feature {name}"
    for name, info in theirs.items():
        if bool(ours[name]["require_aggr"]) != bool(info["require_aggr"]):
            return (f"The feature require_aggr {int(ours[name]['require_aggr'])} of local != that "
                    f"{int(info['require_aggr'])} declared in the distributed cache, feature name: {name}")
        if int(ours[name]["size"]) != int(info["size"]):
            return (f"The feature size {ours[name]['size']} of local != that {info['size']} declared in the "
                    f"distributed cache, feature name: {name}")
    return None


async def empty_model_problem(store: CacheStore) -> str | None:
    """MindSpore's count message for a server started with no feature at all, or None if no model is declared yet
    (MindSpore starts such a server and fails its §13 check: "The number 0 of local features != ...")."""
    declared = await _declared(store)
    return mismatch({"features": {}}, declared) if declared else None


async def _declared(store: CacheStore) -> dict[str, Any] | None:
    """The ModelInfo JSON the job's first server declared, or None."""
    text = await store.run("read model info", store.redis.get(store.job.model_info))
    return json.loads(text) if text else None


async def declare_or_check(store: CacheStore, model: ModelWeights, ttl: Ttl) -> None:
    """Declare this model's layout for the job, or check it against the one declared.

    Raises:
        ConfigError: the layouts differ (MindSpore's four messages).
    """
    key = store.job.model_info
    local = model.model_info()
    await store.run("declare model info", store.redis.set(key, json.dumps(local, sort_keys=True), nx=True,
                                                          ex=ttl.config_s))
    declared = await _declared(store)
    problem = mismatch(local, declared) if declared else None
    if problem:
        raise ConfigError(problem)
