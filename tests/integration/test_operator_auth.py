"""Operators authenticated on the scheduler's management routes: a bearer token (environment or file), /state public
only when allowed, client certificates over HTTPS; and with nothing configured, the routes stay open as MindSpore's."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from tests.integration.cluster import running_scheduler, ut_config
from tests.integration.secured_redis import Pki, make_pki

from mindfed.cache.scheduler_ops import SchedulerCache
from mindfed.cache.store import CacheStore
from mindfed.errors import ConfigError
from mindfed.scheduler import SchedulerApp
from mindfed.scheduler.operator_auth import (
    CA_FILE_ENV,
    STATE_PUBLIC_ENV,
    TOKEN_ENV,
    TOKEN_FILE_ENV,
    OperatorAuth,
    operator_headers,
    request_client_certificates,
)
from mindfed.scheduler.rest import make_app
from mindfed.scheduler.service import ClusterService

pytestmark = pytest.mark.integration

TOKEN = "op-token-0123456789abcdef"
MANAGEMENT = ("/state", "/disableFLS", "/enableFLS", "/newInstance", "/queryInstance")


async def status_and_body(session: aiohttp.ClientSession, url: str, **kw: object) -> tuple[int, dict[str, object]]:
    async with session.post(url, timeout=aiohttp.ClientTimeout(total=10), **kw) as resp:  # type: ignore[arg-type]
        return resp.status, json.loads(await resp.text())


async def test_without_configuration_every_route_stays_open(redis_address: str, fl_name: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (TOKEN_ENV, TOKEN_FILE_ENV, CA_FILE_ENV, STATE_PUBLIC_ENV):
        monkeypatch.delenv(name, raising=False)
    async with running_scheduler(ut_config(redis_address, fl_name)) as scheduler:
        for path in MANAGEMENT:
            status, reply = await scheduler.call(path)
            assert (status, reply["code"]) == (400, "1")  # the service's own answer: no server has registered
            assert "Operator authentication" not in str(reply["error_message"])


async def test_a_token_guards_every_management_route(redis_address: str, fl_name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    async with running_scheduler(ut_config(redis_address, fl_name)) as scheduler:
        session, base = scheduler.session, scheduler.app.url
        for path in MANAGEMENT:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                status, reply = await status_and_body(session, base + path, headers=headers)
                assert status == 401, (path, headers)
                assert reply["code"] == "1"
                assert "Operator authentication required" in str(reply["error_message"])
                assert TOKEN not in json.dumps(reply)
            status, reply = await status_and_body(session, base + path, headers=operator_headers({TOKEN_ENV: TOKEN}))
            assert status == 400
            assert "Operator" not in str(reply["error_message"])
        async with session.get(base + "/openapi.json") as resp:
            assert resp.status == 200  # the route list is documentation, not management


async def test_state_is_public_only_when_the_operator_allows_it(redis_address: str, fl_name: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    monkeypatch.setenv(TOKEN_FILE_ENV, str(token_file))
    monkeypatch.setenv(STATE_PUBLIC_ENV, "1")
    async with running_scheduler(ut_config(redis_address, fl_name)) as scheduler:
        assert (await scheduler.call("/state"))[0] == 400  # the service's answer, no 401
        assert (await scheduler.call("/disableFLS"))[0] == 401
        status, _ = await status_and_body(scheduler.session, scheduler.app.url + "/disableFLS",
                                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 400


def test_bad_settings_refuse_to_start(redis_address: str, fl_name: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ut_config(redis_address, fl_name)
    monkeypatch.setenv(TOKEN_ENV, " ")
    with pytest.raises(ConfigError, match="empty operator token"):
        SchedulerApp(cfg, "127.0.0.1:0")
    monkeypatch.setenv(TOKEN_FILE_ENV, str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="not both"):
        SchedulerApp(cfg, "127.0.0.1:0")
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(ConfigError, match="cannot read"):
        SchedulerApp(cfg, "127.0.0.1:0")
    monkeypatch.delenv(TOKEN_FILE_ENV)
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    monkeypatch.setenv(CA_FILE_ENV, str(ca))
    with pytest.raises(ConfigError, match="client certificates need HTTPS"):
        SchedulerApp(cfg, "127.0.0.1:0")


@asynccontextmanager
async def https_management(redis_address: str, fl_name: str, pki: Pki, auth: OperatorAuth) -> AsyncIterator[str]:
    """The management app over HTTPS with `auth`, as the scheduler serves it under enable_ssl; yields its URL."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    request_client_certificates(context, auth)
    store = CacheStore.connect(redis_address, fl_name)
    runner = web.AppRunner(make_app(ClusterService(SchedulerCache(store)), auth))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await store.close()


async def test_a_verified_client_certificate_authenticates_an_operator(redis_address: str, fl_name: str,
                                                                       tmp_path: Path) -> None:
    pki, stranger = make_pki(tmp_path / "pki"), make_pki(tmp_path / "other")
    auth = OperatorAuth(token=TOKEN, client_ca_file=str(pki.ca))
    async with https_management(redis_address, fl_name, pki, auth) as url, aiohttp.ClientSession() as session:
        def client(cert: Pki | None) -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=pki.ca)
            if cert is not None:
                context.load_cert_chain(cert.client_cert, cert.client_key)
            return context

        assert (await status_and_body(session, url + "/disableFLS", ssl=client(pki)))[0] == 400  # past the guard
        assert (await status_and_body(session, url + "/disableFLS", ssl=client(None)))[0] == 401
        assert (await status_and_body(session, url + "/disableFLS", ssl=client(None),
                                      headers={"Authorization": f"Bearer {TOKEN}"}))[0] == 400
        with pytest.raises(aiohttp.ClientError):  # a certificate of another CA fails the handshake itself
            await status_and_body(session, url + "/disableFLS", ssl=client(stranger))
