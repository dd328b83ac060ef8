"""An OPC UA server for PLCs and SCADA: the line's last verdict and counters, read-only.

Endpoint ``opc.tcp://HOST:PORT/`` (127.0.0.1:4840 unless the URL names another interface),
security policy None. Anonymous clients are allowed unless the URL carries ``user:password@``:
then only that user (with the UserName token) gets in, and the server has a certificate
(self-signed, made once and kept in ``<home>/outputs/opcua-PORT/``) so that clients encrypt the
password with it (Basic256Sha256), and a Basic256Sha256 SignAndEncrypt endpoint is offered too.
No client can write, add or delete a node: every variable is CurrentRead only and the built-in
remote admin is switched off.

Information model, namespace ``urn:ltm-inspector`` (its index is usually 2: clients should look
it up by URI), string node ids under ``Objects/Inspector``:

======================  =========  ==============================================
``Inspector.Station``   String     station name
``Inspector.Running``   Boolean    the line is running
``Inspector.RunId``     Int64      the ledger's run id (0: none)
``Inspector.ModelVersion`` String  bundle name @ first 12 hex of its weights' sha256
``Inspector.LastVerdict`` String   OK / NG / UNSURE / ERROR ("" before the first part)
``Inspector.LastClass`` String     the predicted class ("" for ERROR)
``Inspector.LastConfidence`` Double  0..1
``Inspector.LastFrame`` Int64      the source's frame index of the last part
``Inspector.LastPartAt`` DateTime  when the last part was judged (UTC)
``Inspector.PartCounter`` UInt64   parts judged in this run
``Inspector.OkCount`` / ``NgCount`` / ``UnsureCount`` / ``ErrorCount``  UInt64
======================  =========  ==============================================
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from pathlib import Path

from inspector.line.outputs.base import (
    CONNECTED,
    FAILING,
    LineInfo,
    LineState,
    PartReport,
)
from inspector.line.outputs.served import ServedOutput
from inspector.output_urls import OutputSpec

log = logging.getLogger(__name__)

NAMESPACE = "urn:ltm-inspector"
APPLICATION_URI = "urn:ltm-inspector:server"
COUNTERS = {"OK": "OkCount", "NG": "NgCount", "UNSURE": "UnsureCount", "ERROR": "ErrorCount"}


def _variables() -> list[tuple[str, str, object]]:
    """(name, variant type name, initial value) of every node, in browse order."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return [
        ("Station", "String", ""),
        ("Running", "Boolean", False),
        ("RunId", "Int64", 0),
        ("ModelVersion", "String", ""),
        ("LastVerdict", "String", ""),
        ("LastClass", "String", ""),
        ("LastConfidence", "Double", 0.0),
        ("LastFrame", "Int64", 0),
        ("LastPartAt", "DateTime", epoch),
        ("PartCounter", "UInt64", 0),
        *((name, "UInt64", 0) for name in COUNTERS.values()),
    ]


class OpcUaOutput(ServedOutput):
    scheme = "opc.tcp"
    feed = "judged"  # a PLC reads the verdict as soon as it exists

    def __init__(self, spec: OutputSpec, home: Path | None = None, station: str = "") -> None:
        super().__init__(spec)
        self.station = station
        self.home = home
        self.values: dict[str, object] = {name: value for name, _, value in _variables()}
        self.clients = 0

    def start(self, line: LineInfo, listener=None) -> None:
        self.values["Station"] = line.station
        self.values["RunId"] = line.run_id or 0
        self.values["ModelVersion"] = f"{line.model_name}@{line.model_sha256[:12]}"
        super().start(line, listener)

    async def _serve_async(self) -> None:
        from asyncua import Server, ua

        for name in ("asyncua", "asyncua.server"):
            logging.getLogger(name).setLevel(logging.WARNING)
        server = Server(user_manager=_Users(self.spec.username, self.spec.password))
        await server.init()
        server.allow_remote_admin(False)
        server.set_endpoint(f"opc.tcp://{_host_for_url(self.spec.host)}:{self.spec.port}/")
        server.set_server_name(f"LTM Inspector ({self.station})")
        await server.set_application_uri(APPLICATION_URI)
        if self.spec.username is not None:
            await self._certificate(server)
            server.set_security_policy(
                [ua.SecurityPolicyType.NoSecurity, ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
            )
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        idx = await server.register_namespace(NAMESPACE)
        folder = await server.nodes.objects.add_object(
            ua.NodeId("Inspector", idx), ua.QualifiedName("Inspector", idx)
        )
        self.nodes = {}
        self.types = {}
        for name, type_name, value in _variables():
            variant_type = getattr(ua.VariantType, type_name)
            node = await folder.add_variable(
                ua.NodeId(f"Inspector.{name}", idx),
                ua.QualifiedName(name, idx),
                ua.Variant(value, variant_type),
            )
            self.nodes[name], self.types[name] = node, variant_type
        try:
            await server.start()
        except OSError as exc:
            self._update(state=FAILING, detail=f"cannot listen on {self.spec.host}:{self.spec.port}: {exc}")
            self._drain_as_dropped()
            return
        self.server = server
        self._update(state=CONNECTED, detail=f"listening on opc.tcp://{self.spec.host}:{self.spec.port}/")
        try:
            await self._publish(set(self.values))
            while True:
                changed = self._take_items()
                if changed:
                    await self._publish(changed)
                if self.stopping.is_set() and self.items.empty():
                    break
                self._wake.clear()
                if self.items.empty():
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=0.5)
                    except asyncio.TimeoutError:
                        pass
        finally:
            await server.stop()

    async def _certificate(self, server) -> None:  # asyncua.Server
        """A self-signed server certificate, made once per home and port (so a client can pin it)."""
        import os
        import tempfile

        from asyncua.crypto.cert_gen import setup_self_signed_certificate
        from cryptography.x509.oid import ExtendedKeyUsageOID

        if self.home is not None:
            folder = self.home / "outputs" / f"opcua-{self.spec.port}"
        else:
            folder = Path(tempfile.mkdtemp(prefix="inspector-opcua-"))
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # the private key lives here
        key, cert = folder / "server-key.pem", folder / "server-cert.der"
        await setup_self_signed_certificate(
            key,
            cert,
            APPLICATION_URI,
            "localhost" if self.spec.host in ("127.0.0.1", "::1", "0.0.0.0") else self.spec.host,
            [ExtendedKeyUsageOID.SERVER_AUTH],
            {"commonName": f"LTM Inspector {self.station}".strip()},
        )
        os.chmod(key, 0o600)
        await server.load_certificate(cert)
        await server.load_private_key(key)

    def _take_items(self) -> set[str]:
        changed: set[str] = set()
        while True:
            item = self.next_item(0.0)
            if item is None:
                return changed
            if isinstance(item, LineState):
                self.values["Running"] = item.running
                changed.add("Running")
                if item.running:
                    for name in ("PartCounter", *COUNTERS.values()):
                        self.values[name] = 0
                        changed.add(name)
            elif isinstance(item, PartReport):
                v = self.values
                v["PartCounter"] = item.part
                v["LastVerdict"] = item.verdict
                v["LastClass"] = item.label or ""
                v["LastConfidence"] = float(item.confidence or 0.0)
                v["LastFrame"] = item.frame
                v["LastPartAt"] = item.judged_at
                counter = COUNTERS.get(item.verdict)
                if counter:
                    v[counter] = int(v[counter]) + 1  # type: ignore[call-overload]
                    changed.add(counter)
                changed.update(("PartCounter", "LastVerdict", "LastClass", "LastConfidence", "LastFrame"))
                changed.add("LastPartAt")
                self._count("sent")

    async def _publish(self, names: set[str]) -> None:
        from asyncua import ua

        for name in names:
            await self.server.write_attribute_value(
                self.nodes[name].nodeid, ua.DataValue(ua.Variant(self.values[name], self.types[name]))
            )


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _Users:
    """Anonymous only, or one user name and password; never the remote admin."""

    def __init__(self, username: str | None, password: str | None) -> None:
        self.username, self.password = username, password

    def get_user(self, iserver, username=None, password=None, certificate=None):
        import hmac

        from asyncua.crypto.permission_rules import User, UserRole

        if self.username is None:
            return User(role=UserRole.User)
        if username is None or password is None:
            return None
        same_user = hmac.compare_digest(str(username).encode(), self.username.encode())
        same_password = hmac.compare_digest(str(password).encode(), (self.password or "").encode())
        return User(role=UserRole.User) if same_user and same_password else None
