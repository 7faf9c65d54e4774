"""PostgreSQL only: claiming skips rows another transaction holds (FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from core.store import db
from core.store import repository as repo

SPEC = {"layers": [{"type": "Flatten"}, {"type": "Linear"}]}


@pytest.fixture
def postgres(postgres_server, monkeypatch):
    url = postgres_server.new_database()
    monkeypatch.setenv("STUDIO_DATABASE_URL", url)
    yield url
    db.dispose_engines()


def test_a_claim_skips_the_run_another_claimer_holds_instead_of_waiting(postgres):
    first, second = (
        db.call(repo.create_run, spec=SPEC, dataset="digits", settings={}).id for _ in range(2)
    )
    holder = create_engine(postgres)
    claimed: list[int | None] = []
    with holder.connect() as connection:
        transaction = connection.begin()
        # another worker is in the middle of claiming the oldest run: its row is locked
        connection.execute(text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": first})
        claimer = threading.Thread(
            target=lambda: claimed.append(
                getattr(db.call(repo.claim_next_run, worker_id="w2"), "id", None)
            ),
            daemon=True,
        )
        claimer.start()
        claimer.join(timeout=30)  # a claim that waited for the lock would still be blocked here
        blocked = claimer.is_alive()
        transaction.rollback()
    holder.dispose()
    claimer.join(timeout=30)
    assert not blocked, "the claim waited for the locked row instead of skipping it"
    assert claimed == [second]
    assert db.call(repo.claim_next_run, worker_id="w1").id == first
