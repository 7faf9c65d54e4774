"""The repository against a real SQLite file: versions, claiming, recovery, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from core.store import db
from core.store import repository as repo
from core.store.models import utcnow

SPEC = {"layers": [{"type": "Flatten"}, {"type": "Linear"}]}


@pytest.fixture(autouse=True)
def database(backend):
    """Every test on a SQLite file and on a PostgreSQL database of its own (tests/pg.py)."""
    return backend


@dataclass
class Record:
    name: str
    step: int
    epoch: int
    value: float


def new_run(**overrides) -> int:
    values = {"spec": SPEC, "dataset": "digits", "settings": {"epochs": 1}} | overrides
    return db.call(repo.create_run, **values).id


def test_saving_a_spec_name_again_adds_a_version():
    first = db.call(repo.save_spec, name="lenet", spec={"layers": []})
    second = db.call(repo.save_spec, name="lenet", spec=SPEC)
    db.call(repo.save_spec, name="other", spec=SPEC)
    assert (first.version, second.version) == (1, 2)
    assert db.call(repo.get_spec, name="lenet").spec == SPEC
    assert db.call(repo.get_spec, name="lenet", version=1).spec == {"layers": []}
    latest = db.call(repo.list_specs)
    assert [(s.name, s.version) for s in latest] == [("lenet", 2), ("other", 1)]
    assert len(db.call(repo.list_specs, all_versions=True)) == 3


def test_timestamps_come_back_timezone_aware_utc():
    run = db.call(repo.get_run, run_id=new_run())
    assert run.created.tzinfo is not None
    assert abs(run.created - utcnow()) < timedelta(seconds=30)
    assert run.created.utcoffset() == UTC.utcoffset(None)


def test_claim_takes_the_oldest_queued_run_once():
    first, second = new_run(), new_run()
    claimed = db.call(repo.claim_next_run, worker_id="w1")
    assert claimed.id == first and claimed.status == "running" and claimed.attempts == 1
    assert db.call(repo.claim_next_run, worker_id="w2").id == second
    assert db.call(repo.claim_next_run, worker_id="w3") is None


def test_a_claim_passes_over_runs_this_worker_cannot_train():
    gpu = db.call(repo.create_run, spec=SPEC, dataset="digits", settings={"device": "cuda"}).id
    cpu = db.call(repo.create_run, spec=SPEC, dataset="digits", settings={"device": "cpu"}).id

    def cpu_only(settings: dict) -> bool:
        return settings.get("device") != "cuda"

    assert db.call(repo.claim_next_run, worker_id="w1", can_run=cpu_only).id == cpu
    assert db.call(repo.claim_next_run, worker_id="w1", can_run=cpu_only) is None
    assert db.call(repo.claim_next_run, worker_id="w2").id == gpu


def test_a_worker_that_lost_its_run_writes_nothing():
    run_id = new_run()
    db.call(repo.claim_next_run, worker_id="w1")
    records = [Record("train_loss", 1, 1, 0.5)]
    assert db.call(repo.record_metrics, run_id=run_id, worker_id="w1", records=records)
    assert not db.call(repo.record_metrics, run_id=run_id, worker_id="w2", records=records)
    assert not db.call(repo.finish_run, run_id=run_id, worker_id="w2", status="completed")
    assert db.call(repo.get_run, run_id=run_id).status == "running"


def test_runs_of_a_silent_worker_go_back_to_the_queue():
    kept, lost, stopping = new_run(), new_run(), new_run()
    for worker in ("alive", "dead", "dead2"):
        db.call(
            repo.register_worker, worker_id=worker, host="h", pid=1, device="cpu", status="busy"
        )
        db.call(repo.claim_next_run, worker_id=worker)
    db.call(
        repo.transition_run,
        run_id=stopping,
        from_statuses=("running",),
        values={"requested_action": "stop"},
    )
    # "alive" heartbeats after the cutoff, the other two before it
    cutoff = utcnow() + timedelta(milliseconds=5)
    while utcnow() <= cutoff:
        pass
    db.call(repo.heartbeat, worker_id="alive")
    moved = db.call(repo.requeue_stale_runs, stale_before=cutoff)
    assert sorted(moved) == [lost, stopping]
    statuses = {r.id: (r.status, r.worker_id) for r in db.call(repo.list_runs)}
    assert statuses == {
        kept: ("running", "alive"),
        lost: ("queued", None),
        stopping: ("cancelled", None),
    }


def test_a_run_whose_workers_keep_dying_fails_with_its_history_after_the_cap():
    run_id = new_run()
    for attempt in range(1, 4):
        worker = f"doomed-{attempt}"
        db.call(
            repo.register_worker, worker_id=worker, host="h", pid=1, device="cpu", status="busy"
        )
        assert db.call(repo.claim_next_run, worker_id=worker).id == run_id
        cutoff = utcnow() + timedelta(milliseconds=5)
        while utcnow() <= cutoff:
            pass
        assert db.call(repo.requeue_stale_runs, stale_before=cutoff, max_recoveries=3) == [run_id]
        run = db.call(repo.get_run, run_id=run_id)
        assert len(run.recoveries) == attempt
        assert run.status == ("queued" if attempt < 3 else "failed")
    assert [r["worker"] for r in run.recoveries] == ["doomed-1", "doomed-2", "doomed-3"]
    assert "its worker died 3 times" in run.error and "doomed-2" in run.error
    assert "STUDIO_MAX_RUN_ATTEMPTS" in run.error and run.finished is not None


def test_metrics_are_unique_per_run_name_and_step_and_ids_only_grow():
    run_id = new_run()
    db.call(repo.claim_next_run, worker_id="w")
    batch = [Record("train_loss", s, 1, 1.0 / s) for s in range(1, 11)]
    db.call(repo.record_metrics, run_id=run_id, worker_id="w", records=batch)
    # the same (name, step) again replaces the value rather than adding a row
    db.call(
        repo.record_metrics,
        run_id=run_id,
        worker_id="w",
        records=[Record("train_loss", 10, 1, 42.0)],
    )
    rows = db.call(repo.metrics_since, run_id=run_id)
    assert len(rows) == 10 and rows[-1].value == 42.0
    assert db.call(repo.metric_duplicates, run_id=run_id) == 0
    highest = rows[-1].id
    # a resume from step 5 deletes what came after it; new rows get fresh, higher ids
    db.call(repo.rewind_run, run_id=run_id, step=5, epoch=1)
    db.call(
        repo.record_metrics, run_id=run_id, worker_id="w", records=[Record("train_loss", 6, 1, 0.1)]
    )
    fresh = db.call(repo.metrics_since, run_id=run_id, after_id=highest)
    assert [(r.step, r.value) for r in fresh] == [(6, 0.1)]
    assert db.call(repo.latest_metrics, run_id=run_id) == {"train_loss": 0.1}


def test_the_database_refuses_a_duplicate_metric_row():
    from core.store.models import Metric

    run_id = new_run()
    with pytest.raises(IntegrityError), db.session_scope() as session:
        for _ in range(2):
            session.add(Metric(run_id=run_id, name="x", step=1, epoch=1, value=0.0, time=utcnow()))
            session.flush()


def test_metric_points_reads_one_metric_in_step_order():
    run_id = new_run()
    db.call(repo.claim_next_run, worker_id="w")
    batch = [Record("train_loss", s, 1 + s // 1000, float(s)) for s in range(5000, 0, -1)]
    batch.append(Record("lr", 3, 1, 0.1))
    db.call(repo.record_metrics, run_id=run_id, worker_id="w", records=batch)
    points = db.call(repo.metric_points, run_id=run_id, name="train_loss")
    assert len(points) == 5000
    assert points[0] == (1, 1, 1.0) and points[-1] == (5000, 6, 5000.0)
    assert [p[0] for p in points] == sorted(p[0] for p in points)


def test_deleting_a_run_takes_its_metrics_and_checkpoints():
    run_id = new_run()
    db.call(repo.claim_next_run, worker_id="w")
    db.call(repo.record_metrics, run_id=run_id, worker_id="w", records=[Record("a", 1, 1, 1.0)])
    db.call(
        repo.add_checkpoint, run_id=run_id, worker_id="w", epoch=1, step=1, path="x", metrics={}
    )
    assert db.call(repo.delete_run, run_id=run_id)
    assert db.call(repo.metrics_since, run_id=run_id) == []
    assert db.call(repo.list_checkpoints, run_id=run_id) == []


def test_dataset_records_upsert_list_delete():
    db.call(repo.upsert_dataset_record, name="flowers", kind="images", path="/a", options={})
    db.call(
        repo.upsert_dataset_record, name="flowers", kind="images", path="/b", options={"size": 32}
    )
    records = db.call(repo.list_dataset_records)
    assert [(r.name, r.path, r.options) for r in records] == [("flowers", "/b", {"size": 32})]
    assert db.call(repo.delete_dataset_record, name="flowers")
    assert db.call(repo.get_dataset_record, name="flowers") is None
