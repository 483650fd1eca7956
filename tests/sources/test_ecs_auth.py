"""Credential failures of the ecs source, against a moto server that enforces IAM.

moto checks signatures and IAM policies once INITIAL_NO_AUTH_ACTION_COUNT requests have been
served; the seed makes exactly that many (cluster, task definition, service, two users, a
policy, two keys), so every request of the tests is authenticated for real.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from opstui.config.kinds.aws import AwsConnection, EcsProbe
from opstui.sources.base import ProbeError, Reading
from opstui.sources.ecs import EcsSource
from opstui.sources.registry import ClientPool
from tests.servers.moto import MotoServer, aws_test_env, create_services

SEED_REQUESTS = 8


KEYS: dict[str, str] = {}
"""The viewer user's access key, made by the seed."""


def _seed(server: MotoServer) -> None:
    create_services(server, "prod", {"web": 1})  # 3 requests
    iam = server.client("iam")
    iam.create_user(UserName="viewer")  # no policy at all
    key = iam.create_access_key(UserName="viewer")["AccessKey"]
    KEYS.update(id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    iam.create_user(UserName="counter")  # may describe services, not list tasks
    iam.put_user_policy(
        UserName="counter",
        PolicyName="describe-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "ecs:DescribeServices", "Resource": "*"}
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="counter")["AccessKey"]
    KEYS.update(counter_id=key["AccessKeyId"], counter_secret=key["SecretAccessKey"])


@pytest.fixture(scope="module")
def strict_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(
        tmp_path_factory.mktemp("moto-iam"),
        seed=_seed,
        extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": str(SEED_REQUESTS)},
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws_test_env().items():
        monkeypatch.setenv(name, value)


async def _poll(
    server: MotoServer, monkeypatch: pytest.MonkeyPatch, key: str, secret: str
) -> Reading | ProbeError:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    connection = AwsConnection.model_validate(
        {"kind": "aws", "region": "eu-west-1", "endpoint_url": server.url, "timeout": "5s"}
    )
    probe: Any = EcsProbe.model_validate(
        {"kind": "ecs", "id": "web", "connection": "aws", "cluster": "prod", "service": "web"}
    )
    pool = ClientPool()
    try:
        return await EcsSource.build(probe, connection, pool).poll()
    except ProbeError as exc:
        return exc
    finally:
        await pool.aclose()


async def _failure(
    server: MotoServer, monkeypatch: pytest.MonkeyPatch, key: str, secret: str
) -> ProbeError:
    outcome = await _poll(server, monkeypatch, key, secret)
    assert isinstance(outcome, ProbeError), outcome
    return outcome


async def test_unknown_key_and_wrong_secret_are_signature_errors(
    strict_moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = await _failure(strict_moto, monkeypatch, "AKIAUNKNOWN000000000", "whatever")
    assert unknown.reason == "InvalidSignature/expired token"
    wrong = await _failure(strict_moto, monkeypatch, KEYS["id"], "not-the-secret")
    assert wrong.reason == "InvalidSignature/expired token"
    assert wrong.hint is not None and "credentials" in wrong.hint


async def test_user_without_policy_gets_access_denied(
    strict_moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = await _failure(strict_moto, monkeypatch, KEYS["id"], KEYS["secret"])
    assert denied.reason == "AccessDenied"
    assert denied.hint is not None and "ecs:DescribeServices" in denied.hint


async def test_counts_stand_when_only_the_stopped_task_calls_are_denied(
    strict_moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading = await _poll(strict_moto, monkeypatch, KEYS["counter_id"], KEYS["counter_secret"])
    assert isinstance(reading, Reading), reading
    assert reading.fields["desired"] == 1
    assert reading.notes == ("stopped tasks unavailable: AccessDenied",)
