"""Train page, through AppTest: a real tiny run on digits through a real worker subprocess."""

from __future__ import annotations

from app import state
from core import runs
from tests.pages.conftest import add_blocks, open_app, wait_for


def train_page_with_a_cnn():
    at = add_blocks(open_app(), "Conv2d", "ReLU", "Flatten", "Linear")
    at.switch_page("../pages/train.py").run()
    assert not at.exception, at.exception
    return at


def watched(at) -> int:
    value = at.query_params[state.QP_RUN]
    return int(value[0] if isinstance(value, list) else value)


def test_the_model_is_checked_against_the_dataset_before_launch():
    at = train_page_with_a_cnn()
    assert any("The model fits digits" in s.value for s in at.success)
    assert not at.button(key="train.launch").disabled
    at.selectbox(key=state.TRAIN_DATASET).set_value("mnist1d").run()
    message = " ".join(e.value for e in at.error)
    # the builder's own message, naming the failing layer once
    assert message.startswith("layer 0 Conv2d: it needs an image") and "Block" not in message
    assert at.button(key="train.launch").disabled


def test_settings_follow_the_optimizer():
    at = train_page_with_a_cnn()
    keys = {w.key for w in at.number_input}
    assert state.TRAIN_SETTING + "eps" in keys and state.TRAIN_SETTING + "momentum" not in keys
    at.selectbox(key=state.TRAIN_SETTING + "optimizer").set_value("sgd").run()
    assert state.TRAIN_SETTING + "momentum" in {w.key for w in at.number_input}
    assert at.number_input(key=state.TRAIN_SETTING + "momentum").value == 0.9  # sgd's default
    at.selectbox(key=state.TRAIN_SETTING + "optimizer").set_value("adam").run()
    at.button(key="train.launch").click().run()
    settings = runs.list_runs()[0].settings  # the schema's rules, not a map kept by the page
    assert settings["optimizer"] == "adam" and settings["momentum"] is None


def test_a_double_click_queues_one_run():
    at = train_page_with_a_cnn()
    at.button(key="train.launch").click().run()
    at.button(key="train.launch").click().run()
    assert [r.status for r in runs.list_runs()] == ["queued"]
    assert watched(at) == runs.list_runs()[0].id
    assert runs.get_spec("my-model").version == 1  # the model from Build is kept with its run


def test_a_launched_run_trains_live_on_a_real_worker(worker):
    at = train_page_with_a_cnn()
    at.number_input(key=state.TRAIN_SETTING + "epochs").set_value(3).run()
    at.number_input(key=state.TRAIN_SETTING + "batch_size").set_value(16).run()
    at.number_input(key=state.TRAIN_SETTING + "log_every").set_value(5).run()
    at.button(key="train.launch").click().run()
    run_id = watched(at)
    assert runs.get_run(run_id).settings["epochs"] == 3
    seen: list[tuple[str, int]] = []  # (status on screen, train-loss points on screen)

    def poll() -> bool:
        at.run()  # what the fragment does every second in the browser
        assert not at.exception, at.exception
        status = runs.get_run(run_id).status
        seen.append((status, at.session_state[state.LIVE_CURVES].recorded.get("train_loss", 0)))
        return status in ("completed", "failed")

    wait_for(poll, timeout=180, what="the run to finish")
    statuses = [status for status, _ in seen]
    counts = [count for _, count in seen]
    assert statuses[-1] == "completed", runs.get_run(run_id).error
    assert {"queued", "running"} & set(statuses)  # the page saw it before the end
    assert len(set(counts)) >= 2 and counts == sorted(counts)  # the curve grew, never shrank
    at.run()  # one more poll after the end: every recorded point is on screen
    recorded = at.session_state[state.LIVE_CURVES].recorded
    assert recorded["train_loss"] == runs.metrics_series(run_id, "train_loss").total
    assert recorded["val_accuracy"] == 3  # one per epoch
    assert any(m.label == "Test accuracy" for m in at.metric)
    header = " ".join(m.value for m in at.markdown)
    assert f"Run {run_id}" in header and "completed" in header


def test_stop_a_queued_run():
    at = train_page_with_a_cnn()
    at.button(key="train.launch").click().run()
    run_id = watched(at)
    at.button(key="train.stop").click().run()
    assert runs.get_run(run_id).status == "cancelled"
    assert at.button(key="train.stop").disabled


def test_a_launch_from_the_page_traces_the_spec_once(monkeypatch):
    from core import builder

    at = add_blocks(open_app(), "Conv2d", "ReLU", "Flatten", "Linear")
    traced = []
    real = builder.trace
    monkeypatch.setattr(
        builder, "trace", lambda spec, *args, **kw: traced.append(spec) or real(spec, *args, **kw)
    )
    at.switch_page("../pages/train.py").run()  # the fit check
    at.button(key="train.launch").click().run()  # submission, then the page again
    assert [r.status for r in runs.list_runs()] == ["queued"]
    assert len(traced) == 1


def setting(at, name: str):
    return at.session_state[state.TRAIN_SETTING + name]


def test_settings_survive_a_page_switch_and_a_reload():
    at = train_page_with_a_cnn()
    at.selectbox(key=state.TRAIN_SETTING + "optimizer").set_value("sgd").run()
    at.number_input(key=state.TRAIN_SETTING + "lr").set_value(0.05).run()
    at.number_input(key=state.TRAIN_SETTING + "epochs").set_value(3).run()
    at.selectbox(key=state.TRAIN_SETTING + "scheduler").set_value("cosine").run()
    at.switch_page("../pages/build.py").run()
    at.switch_page("../pages/train.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key=state.TRAIN_SETTING + "optimizer").value == "sgd"
    assert at.number_input(key=state.TRAIN_SETTING + "lr").value == 0.05
    assert at.number_input(key=state.TRAIN_SETTING + "epochs").value == 3
    assert at.selectbox(key=state.TRAIN_SETTING + "scheduler").value == "cosine"
    link = at.query_params[state.QP_TRAIN]
    link = link[0] if isinstance(link, list) else link

    reloaded = add_blocks(open_app(), "Conv2d", "ReLU", "Flatten", "Linear")
    reloaded.query_params[state.QP_TRAIN] = link  # a reload keeps the address
    reloaded.switch_page("../pages/train.py").run()
    assert not reloaded.exception, reloaded.exception
    assert reloaded.selectbox(key=state.TRAIN_SETTING + "optimizer").value == "sgd"
    assert reloaded.number_input(key=state.TRAIN_SETTING + "lr").value == 0.05
    assert reloaded.number_input(key=state.TRAIN_SETTING + "epochs").value == 3


def test_an_address_with_settings_that_do_not_fit_is_ignored():
    at = add_blocks(open_app(), "Conv2d", "ReLU", "Flatten", "Linear")
    at.query_params[state.QP_TRAIN] = '{"optimizer":"nope","lr":-1,"epochs":2.5,"batch_size":8}'
    at.switch_page("../pages/train.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key=state.TRAIN_SETTING + "optimizer").value == "adam"
    assert at.number_input(key=state.TRAIN_SETTING + "epochs").value == 10
    assert at.number_input(key=state.TRAIN_SETTING + "batch_size").value == 8


def test_the_watch_box_names_the_run_below_it_and_it_survives_a_page_switch():
    at = train_page_with_a_cnn()
    at.button(key="train.launch").click().run()
    run_id = watched(at)
    assert any(f"Run {run_id} is queued" in t.value for t in at.toast)
    assert not any("queued" in s.value for s in at.success)  # no banner outliving the queue
    at.switch_page("../pages/build.py").run()
    at.switch_page("../pages/train.py").run()
    assert not at.exception, at.exception
    assert watched(at) == run_id
    assert at.selectbox(key=state.WATCH_CHOICE).value == run_id
    assert not any("Launch a run to watch it here" in i.value for i in at.info)

    fresh = add_blocks(open_app(), "Conv2d", "ReLU", "Flatten", "Linear")  # a new session
    fresh.switch_page("../pages/train.py").run()
    assert any("Launch a run to watch it here" in i.value for i in fresh.info)
    assert fresh.selectbox(key=state.WATCH_CHOICE).value is None  # not "Watching run N"


def test_a_stopped_run_says_stopped_and_shows_its_settings():
    at = train_page_with_a_cnn()
    at.button(key="train.launch").click().run()
    at.button(key="train.stop").click().run()
    header = " ".join(m.value for m in at.markdown)
    assert "badge[stopped]" in header and "cancelled" not in header
    assert any(
        "adam · lr 0.001 · no schedule · 10 epochs · batch 64" in c.value for c in at.caption
    )
