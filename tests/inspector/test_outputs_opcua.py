"""The OPC UA server against a real asyncua client on 127.0.0.1: counters equal the ledger's."""

from __future__ import annotations

import asyncio

import pytest
from broker_support import wait_until
from ledger_support import free_port
from tests_support import demo_line_request

from inspector.line.build import build_pipeline
from inspector.line.outputs import CONNECTED
from inspector.line.outputs.opcua import NAMESPACE
from inspector.store import ResultFilter

NAMES = (
    "PartCounter",
    "OkCount",
    "NgCount",
    "UnsureCount",
    "ErrorCount",
    "LastVerdict",
    "Running",
    "ModelVersion",
    "RunId",
    "Station",
)


async def _read(url: str, user: str | None = None, password: str | None = None) -> dict:
    from asyncua import Client

    client = Client(url, timeout=30)
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    async with client:
        idx = await client.get_namespace_index(NAMESPACE)
        values = {}
        for name in NAMES:
            values[name] = await client.get_node(f"ns={idx};s=Inspector.{name}").read_value()
        node = client.get_node(f"ns={idx};s=Inspector.PartCounter")
        from asyncua import ua

        try:
            await node.write_value(ua.Variant(0, ua.VariantType.UInt64))
            values["writable"] = True
        except ua.UaStatusCodeError:
            values["writable"] = False
        return values


async def _password_policies(url: str) -> set[str]:
    """How the unencrypted endpoint asks for the UserName token's password to be encrypted."""
    from asyncua import Client, ua

    endpoints = await Client(url, timeout=30).connect_and_get_server_endpoints()
    return {
        token.SecurityPolicyUri.rsplit("#", 1)[-1]
        for endpoint in endpoints
        if endpoint.SecurityMode == ua.MessageSecurityMode.None_
        for token in endpoint.UserIdentityTokens
        if token.TokenType == ua.UserTokenType.UserName
    }


def _line(tmp_path, outputs, source="sim?fps=0", frames=40):
    request = demo_line_request(tmp_path, source, frames, outputs, station="press-2")
    return build_pipeline(request)


def test_opc_ua_counters_equal_the_ledgers(tmp_path):
    port = free_port()
    pipeline = _line(tmp_path, [f"opc.tcp://127.0.0.1:{port}"])
    output = pipeline.outputs.outputs[0]
    pipeline.start()
    try:
        # Start waits for the server (its address space costs seconds of CPU: not on the first frames).
        assert output.health().state == CONNECTED
        wait_until(lambda: not pipeline.running, 600, "the run to end")
        wait_until(lambda: output.health().sent == 40 and output.items.empty(), what="every part served")
        values = asyncio.run(_read(f"opc.tcp://127.0.0.1:{port}/"))
    finally:
        pipeline.stop()
        pipeline.wait()
    ledger, run = pipeline.ledger, pipeline.run_id
    count = {
        v: ledger.count_results(ResultFilter(run_id=run, verdicts=(v,)))
        for v in ("OK", "NG", "UNSURE", "ERROR")
    }
    assert values["PartCounter"] == ledger.count_results(ResultFilter(run_id=run)) == 40
    assert (values["OkCount"], values["NgCount"], values["UnsureCount"], values["ErrorCount"]) == (
        count["OK"],
        count["NG"],
        count["UNSURE"],
        count["ERROR"],
    )
    last = ledger.query_results(ResultFilter(run_id=run), limit=1)[0]
    assert values["LastVerdict"] == last["verdict"]
    assert values["Running"] is True and values["RunId"] == run and values["Station"] == "press-2"
    assert values["ModelVersion"].endswith(pipeline.engine.sha256[:12])
    assert values["writable"] is False  # read-only for every client


def test_opc_ua_with_a_password_refuses_anonymous_and_wrong_passwords(tmp_path, tiny_station):
    port = free_port()
    pipeline = _line(tmp_path, [f"opc.tcp://plc:s3cret@127.0.0.1:{port}"], f"{tiny_station}?fps=0", frames=3)
    output = pipeline.outputs.outputs[0]
    assert "s3cret" not in output.name
    pipeline.start()
    try:
        wait_until(lambda: output.health().state == CONNECTED, 120, "the OPC UA server")
        wait_until(lambda: not pipeline.running, 600, "the run to end")
        url = f"opc.tcp://127.0.0.1:{port}/"
        values = asyncio.run(_read(url, "plc", "s3cret"))
        assert values["PartCounter"] == 3
        # The password goes encrypted with the server's certificate, never in clear.
        assert asyncio.run(_password_policies(url)) == {"Basic256Sha256"}
        for user, password in ((None, None), ("plc", "wrong"), ("admin", "s3cret")):
            with pytest.raises(Exception):  # noqa: B017 - asyncua raises BadUserAccessDenied or BadIdentityTokenInvalid
                asyncio.run(_read(url, user, password))
    finally:
        pipeline.stop()
        pipeline.wait()
