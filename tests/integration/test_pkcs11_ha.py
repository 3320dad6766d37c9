"""Issue 14, HA: a python-pkcs11 application signs in a loop through the bridge while the cluster's
leader (a member the bridge talks to) is SIGKILLed and restarted: no C_Sign fails, and the key
generated just before the kill works after it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from hsmnode.ops.devcluster import DevCluster
from tests.integration.conftest import start_cluster
from tests.integration.helpers import leader_of
from tests.integration.pkcs11_support import CLIENT_MODULE, BridgeProcess, require_pkcs11_tools

pytestmark = [pytest.mark.cluster, pytest.mark.processes]

APP = textwrap.dedent(
    """
    import hashlib, json, os, sys, threading
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_named_curve_parameters
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    token = pkcs11.lib(sys.argv[1]).get_token(token_label="demo")
    ok, failed, errors = 0, 0, []
    digest = hashlib.sha256(b"keep signing").digest()
    with token.open(user_pin=os.environ["PIN"], rw=True) as s:
        params = s.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        pub, priv = params.generate_keypair(store=True, label="ha-before-kill")
        print("ready", flush=True)
        while not stop.is_set():
            try:
                signature = priv.sign(digest, mechanism=Mechanism.ECDSA)
                ok += 1
            except Exception as exc:
                failed += 1
                errors.append(repr(exc))
            if (ok + failed) % 25 == 0:
                print(f"progress {ok} {failed}", flush=True)
        usable = pub.verify(digest, priv.sign(digest, mechanism=Mechanism.ECDSA), mechanism=Mechanism.ECDSA)
        after = s.generate_key(KeyType.AES, 256, store=True, label="ha-after-restart").label
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5], "usable": usable, "after": after}), flush=True)
    """
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    require_pkcs11_tools()
    c = start_cluster(tmp_path_factory.mktemp("p11ha"), fault_injection=False)
    try:
        yield c
    finally:
        c.stop()


def test_signing_loop_survives_sigkill_and_restart_of_the_bridges_member(cluster: DevCluster) -> None:
    demo = cluster.demo()
    assert demo is not None
    victim = leader_of(cluster)  # writes and reads both lose their member
    order = [cluster.member(victim).grpc] + [m.grpc for m in cluster.members if m.id != victim]
    bridge = BridgeProcess(cluster, order)
    app = subprocess.Popen(
        [sys.executable, "-c", APP, CLIENT_MODULE],
        env={**bridge.env, "PIN": demo["partition"]["co_password"]},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert app.stdin is not None and app.stdout is not None
    try:

        def progress(n: int) -> None:
            seen = 0
            while seen < n:
                line = app.stdout.readline()  # type: ignore[union-attr]
                assert line, app.stderr.read() if app.stderr else "the application died"
                seen += line.startswith("progress")

        assert app.stdout.readline().strip() == "ready", app.stderr.read() if app.stderr else ""
        cluster.kill(victim)
        progress(4)  # signing goes on without the member
        cluster.start(victim)
        cluster.wait_for_leader(timeout=30.0)
        progress(4)
        app.stdin.close()
        last = app.stdout.read().strip().splitlines()[-1]
        assert app.wait(60) == 0 and last.startswith("{"), app.stderr.read() if app.stderr else last
        report = json.loads(last)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        for pipe in (app.stdin, app.stdout, app.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
        bridge.stop()
    print(f"C_Sign through the kill and restart: {report['ok']} ok, {report['failed']} failed")
    assert report["failed"] == 0, report["errors"]
    assert report["ok"] >= 200 and report["usable"] and report["after"] == "ha-after-restart"
