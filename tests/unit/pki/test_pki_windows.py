"""What pki_verify adds to PW_ENCRYPT's counts and windows (spec §4.1, §3.4)."""

from __future__ import annotations

from tests.integration.cluster import ut_config

from mindfed.secagg.thresholds import pw_thresholds


def test_list_sign_thresholds_and_two_more_cipher_windows() -> None:
    cfg = ut_config("127.0.0.1:1", "t", **{
        "round.start_fl_job_threshold": 10, "round.update_model_ratio": 0.8, "encrypt.encrypt_train_type":
        "PW_ENCRYPT", "encrypt.pw_encrypt.share_secrets_ratio": 0.5, "encrypt.pw_encrypt.cipher_time_window": 3000,
        "encrypt.pw_encrypt.reconstruct_secrets_threshold": 2})
    th = pw_thresholds(cfg)
    assert th.get_client_list == 4  # L = max(ceil(8 x 0.5), 3)
    assert th.push_list_sign == 3  # P = max(ceil(4 x 0.5), 3)
    assert th.get_list_sign == 3  # max(ceil(3 x 0.5), 3)
    assert th.of("pushListSign") == 3
    plain = cfg.round.iteration_time_window_ms(cfg.encrypt)
    assert cfg.round.iteration_time_window_ms(cfg.encrypt, pki_verify=True) == plain + 2 * 3000
    assert cfg.round.iteration_time_window_ms(None, pki_verify=True) == 20000
