"""pipelines.repro: what it needs before it starts the repro's Ray head."""

from __future__ import annotations

import os

from pipelines import repro


def test_a_fresh_machine_gets_an_auth_token_and_an_existing_one_is_kept(tmp_path):
    # `ray start --head` under RAY_AUTH_MODE=token refuses to start without a token, so a
    # machine that has never run Ray (no ~/.ray/auth_token) could not run `make main`
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_TOKEN")}
    env |= {"HOME": str(tmp_path), "RAY_AUTH_MODE": "token"}
    token = tmp_path / ".ray" / "auth_token"
    assert not token.exists()
    repro.ensure_auth_token(env)
    first = token.read_text()
    assert len(first) >= 32
    repro.ensure_auth_token(env)  # a second call (a cluster's own token) leaves it as it is
    assert token.read_text() == first


def test_live_nodes_counts_the_active_section_of_ray_status():
    status = (
        "Node status\n-----\nActive:\n 1 node_ab12\n 1 node_cd34\nPending:\n (no pending nodes)\n"
        "Recent failures:\n (no failures)\n"
    )
    assert repro._live_nodes(status) == 2
    assert repro._live_nodes(status.replace(" 1 node_cd34\n", "")) == 1
    assert repro._live_nodes("Active:\n (no active nodes)\nPending:\n") == 0
    assert repro._live_nodes("the GCS did not answer") == 0
