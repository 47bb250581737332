"""The one table of hyper-parameters (config/hyper_params.py): it covers every YAML key that is one, and the three
views derived from it are what MindSpore's server and scheduler use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mindfed.config import load, to_dict
from mindfed.config.hyper_params import HYPER_PARAMS, NewInstanceCheck, published
from mindfed.scheduler.hyper_params import OVERRIDABLE
from mindfed.server.hyper_params import DOTTED, MUST_MATCH

# Every YAML key of the schema that is NOT a hyper-parameter: what each process keeps to itself (where its Redis is,
# its certificates, its files). A new YAML key must land either in the table or here, so none is forgotten.
PROCESS_LOCAL = frozenset({
    "fl_name", "server_mode",
    "distributed_cache.type", "distributed_cache.address", "distributed_cache.plugin_lib_path",
    "distributed_cache.cacert_filename", "distributed_cache.capath", "distributed_cache.cert_filename",
    "distributed_cache.private_key_filename", "distributed_cache.server_name", "distributed_cache.replica_acks",
    "distributed_cache.replica_ack_timeout_ms",
    "summary.metrics_file", "summary.failure_event_file", "summary.continuous_failure_times",
    "summary.data_rate_dir", "summary.participation_time_level",
    "unsupervised.cluster_client_num", "unsupervised.eval_type",
    "ssl.server_cert_path", "ssl.client_cert_path", "ssl.ca_cert_path", "ssl.crl_path", "ssl.cipher_list",
    "ssl.cert_expire_warning_time_in_day",
    "client_verify.root_first_ca_path", "client_verify.root_second_ca_path", "client_verify.equip_crl_path",
    "client_verify.replay_attack_time_diff",
    "client.http_url_prefix", "client.connection_num", "client.poll_hold_ms", "client.receive_buffer_bytes",
})


def leaf_keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in tree.items():
        dotted = f"{prefix}{name}"
        keys |= leaf_keys(value, f"{dotted}.") if isinstance(value, dict) else {dotted}
    return keys


def test_every_yaml_key_is_a_hyper_parameter_or_process_local(seed_yaml: Path) -> None:
    # the schema's own keys, read off the effective config (defaults included), not a hand-made list
    schema_keys = leaf_keys(to_dict(load(seed_yaml)))
    table = {p.yaml_key for p in HYPER_PARAMS if p.yaml_key}

    assert schema_keys - table - PROCESS_LOCAL == set(), "classify the new key: a row of HYPER_PARAMS or PROCESS_LOCAL"
    assert table - schema_keys == set(), "a row names a YAML key the schema does not have"
    assert table.isdisjoint(PROCESS_LOCAL)
    assert schema_keys >= PROCESS_LOCAL


def test_fields_are_unique_and_every_row_has_a_value(seed_yaml: Path) -> None:
    fields = [p.field for p in HYPER_PARAMS]
    assert len(fields) == len(set(fields))
    assert sorted(published(load(seed_yaml))) == sorted(fields)


def test_the_views_are_mindspores() -> None:
    # /newInstance's fields and MindSpore's order of checks (MergeHyperJsonConfig), pinned once here
    u, p = NewInstanceCheck.UNSIGNED, NewInstanceCheck.POSITIVE
    assert (
        ("global_iteration_time_window", u), ("start_fl_job_threshold", u), ("start_fl_job_time_window", u),
        ("update_model_ratio", p), ("update_model_time_window", u), ("client_epoch_num", u),
        ("client_batch_size", u), ("client_learning_rate", p), ("fl_iteration_num", u)) == OVERRIDABLE
    assert MUST_MATCH == ("enable_ssl", "pki_verify")
    assert DOTTED["encrypt_type"] == "encrypt.encrypt_train_type"
    assert DOTTED["sign_dim_out"] == "encrypt.signds.sign_dim_out"
    assert len(DOTTED) == 33  # MindSpore's 29 + dp_population, dp_eps_budget, secure_compressed_upload, _quant_bound
    assert "secure_aggregation" not in DOTTED  # derived from encrypt_type, never adopted on its own
