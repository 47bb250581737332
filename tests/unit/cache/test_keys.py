"""Every key of one job hashes to one Redis Cluster slot (the `{fl_name}` hash tag), so each Lua script, MULTI and
multi-key command of the job runs on one node; two jobs are two tags."""

from __future__ import annotations

import inspect

from redis.crc import key_slot

from mindfed.cache import keys as K


def every_key(job: K.JobKeys) -> list[str]:
    """Every key name the three key classes make for `job`: properties, and methods of one name argument."""
    instance, iteration = job.instance("inst-1"), job.instance("inst-1").iteration(7)
    found: list[str] = []
    for obj in (job, instance, iteration):
        for name, member in inspect.getmembers(type(obj)):
            if name.startswith("_") or name == "prefix":
                continue
            if isinstance(member, property):
                found.append(getattr(obj, name))
            elif inspect.isfunction(member) and name not in ("instance", "iteration", "all_keys", "node_keys"):
                found.append(getattr(obj, name)("node-or-round-9"))
    found += iteration.all_keys() + iteration.node_keys("node-2")
    return found


def test_every_key_of_a_job_shares_one_slot() -> None:
    job = K.JobKeys("lenet-job")
    keys = every_key(job)
    assert len(keys) > 40  # the enumeration really found the key catalogue
    assert all(isinstance(k, str) and k.startswith("ms_fl:{lenet-job}:") for k in keys), keys
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"lenet-job")}


def test_two_jobs_carry_two_tags() -> None:
    assert K.JobKeys("a").instance_name != K.JobKeys("b").instance_name
    assert key_slot(K.JobKeys("a").instance_name.encode()) == key_slot(b"a")
    assert key_slot(K.JobKeys("b").model_info.encode()) == key_slot(b"b")
