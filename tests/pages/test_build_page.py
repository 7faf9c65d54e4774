"""Build page, through Streamlit's AppTest: blocks, live shapes, errors on the right block."""

from __future__ import annotations

import json

from app import spec_editor, state
from core import runs
from tests.pages.conftest import add_blocks, blocks, open_app


def layer_table(at):
    return next(d for d in at.dataframe).value


def card(at, uid):
    return at.container(key=f"card_{uid}")


def inputs_box(at, uid):
    """The block's "takes input from" box (its key follows the option labels)."""
    prefix = state.block_key(uid, "inputs.")
    return next(m for m in at.multiselect if m.key and m.key.startswith(prefix))


def types(at) -> list[str]:
    return [b.type for b in blocks(at)]


def test_palette_adds_blocks_and_the_table_follows():
    at = open_app()
    assert at.info and "empty" in at.info[0].value
    add_blocks(at, "Conv2d", "ReLU", "Flatten", "Linear")
    assert types(at) == ["Conv2d", "ReLU", "Flatten", "Linear"]
    rows = layer_table(at)
    assert list(rows["block"]) == ["Conv2d", "ReLU", "Flatten", "Linear"]
    assert list(rows["output shape"]) == ["16×6×6", "16×6×6", "576", "10"]  # digits: 1×8×8
    assert rows["params"].iloc[0] == 16 * 9 + 16
    assert any("The model builds" in s.value for s in at.success)


def test_blocks_move_duplicate_and_delete():
    at = add_blocks(open_app(), "Conv2d", "ReLU", "Flatten")
    first, relu, flatten = (b.uid for b in blocks(at))
    at.button(key=f"b.{relu}.up").click().run()
    assert types(at) == ["ReLU", "Conv2d", "Flatten"]
    at.button(key=f"b.{relu}.down").click().run()
    assert types(at) == ["Conv2d", "ReLU", "Flatten"]
    at.button(key=f"b.{first}.copy").click().run()
    assert types(at) == ["Conv2d", "Conv2d", "ReLU", "Flatten"]
    at.button(key=f"b.{flatten}.delete").click().run()
    assert types(at) == ["Conv2d", "Conv2d", "ReLU"]
    assert list(layer_table(at)["block"]) == ["Conv2d", "Conv2d", "ReLU"]


def test_new_blocks_go_after_the_selected_one():
    at = add_blocks(open_app(), "Conv2d", "Flatten", "Linear")
    conv = blocks(at)[0].uid
    at.button(key=f"b.{conv}.select").click().run()
    add_blocks(at, "ReLU", "MaxPool2d")
    assert types(at) == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]


def test_changing_a_parameter_changes_the_table():
    at = add_blocks(open_app(), "Conv2d", "Flatten", "Linear")
    conv = blocks(at)[0].uid
    before = layer_table(at)
    at.number_input(key=f"b.{conv}.p.out_channels").set_value(4).run()
    after = layer_table(at)
    assert before["params"].iloc[0] == 160 and after["params"].iloc[0] == 4 * 9 + 4
    assert after["output shape"].iloc[0] == "4×6×6"
    assert blocks(at)[0].layer["out_channels"] == 4
    at.text_input(key=f"b.{conv}.p.padding").set_value("same").run()
    assert layer_table(at)["output shape"].iloc[0] == "4×8×8"


def test_an_error_shows_on_the_block_that_causes_it():
    at = add_blocks(open_app(), "Conv2d", "Flatten", "Conv2d", "Linear")
    good, flatten, bad, _ = (b.uid for b in blocks(at))
    errors = card(at, bad).error
    assert len(errors) == 1
    assert "Conv2d" in errors[0].value or "image" in errors[0].value
    assert not card(at, good).error and not card(at, flatten).error
    rows = layer_table(at)  # the good part keeps its shapes
    assert list(rows["output shape"]) == ["16×6×6", "576"]
    at.button(key=f"b.{bad}.delete").click().run()
    assert not at.error and list(layer_table(at)["output shape"])[-1] == "10"


def test_kernel_too_large_for_the_input_is_reported_with_a_fix():
    at = add_blocks(open_app(), "Conv2d")
    conv = blocks(at)[0].uid
    at.text_input(key=f"b.{conv}.p.kernel_size").set_value("9").run()
    message = card(at, conv).error[0].value
    assert "kernel" in message.lower()


def test_merge_blocks_take_inputs_from_earlier_blocks():
    at = add_blocks(open_app(), "Conv2d", "ReLU", "Conv2d", "Add")
    first, _, third, add = (b.uid for b in blocks(at))
    at.text_input(key=f"b.{first}.p.padding").set_value("same").run()
    at.text_input(key=f"b.{third}.p.padding").set_value("same").run()
    inputs_box(at, add).set_value([first, third]).run()
    spec = spec_editor.to_spec(at.session_state[state.DRAFT])
    ids = [layer.get("id") for layer in spec["layers"]]
    assert ids[0] and ids[2] and spec["layers"][3]["inputs"] == [ids[0], ids[2]]
    assert list(layer_table(at)["output shape"])[-1] == "16×8×8"
    assert not at.error


def test_template_code_and_export():
    at = open_app()
    at.selectbox(key=state.TEMPLATE_CHOICE).set_value("mnist1d-gru").run()
    at.button(key="build.use_template").click().run()
    assert "GRU" in types(at)
    assert at.selectbox(key=state.INPUT_SOURCE).value == "mnist1d"
    assert any("class" in c.value and "nn.GRU" in c.value for c in at.code)
    labels = [button.proto.label for button in at.get("download_button")]
    assert "Export JSON" in labels and "Download model.py" in labels
    assert not at.error


def test_import_refuses_bad_json_with_a_message_and_accepts_a_spec():
    at = open_app()
    at.file_uploader(key=state.IMPORT_FILE).upload(
        "broken.json", b'{"layers": [', "application/json"
    )
    at.run()
    assert any("not valid JSON" in e.value and "line 1" in e.value for e in at.error)
    assert not at.exception
    spec = {"name": "imported", "layers": [{"type": "Flatten"}, {"type": "Linear"}]}
    at.file_uploader(key=state.IMPORT_FILE).upload(
        "good.json", json.dumps(spec).encode(), "application/json"
    )
    at.run()
    assert types(at) == ["Flatten", "Linear"]
    assert any("Imported good" in s.value for s in at.success)  # the name is markdown-escaped


def test_save_a_version_and_reopen_it():
    at = add_blocks(open_app(), "Flatten", "Linear")
    at.text_input(key=state.SAVE_NAME).set_value("tiny").run()
    at.button(key="build.save").click().run()
    assert any("version 1" in s.value for s in at.success)
    assert runs.get_spec("tiny").spec["layers"] == [{"type": "Flatten"}, {"type": "Linear"}]
    add_blocks(at, "ReLU")
    at.button(key="build.save").click().run()
    assert runs.get_spec("tiny").version == 2
    at.selectbox(key=state.SAVED_CHOICE).set_value(("tiny", 1)).run()
    at.button(key="build.open").click().run()
    assert types(at) == ["Flatten", "Linear"]


def test_the_draft_survives_a_reload_through_the_url():
    at = add_blocks(open_app(), "Conv2d", "ReLU", "Flatten", "Linear")
    draft = at.query_params[state.QP_DRAFT]
    draft = draft[0] if isinstance(draft, list) else draft
    reloaded = open_app(query_params={state.QP_DRAFT: draft})
    assert types(reloaded) == ["Conv2d", "ReLU", "Flatten", "Linear"]


def code_of(at) -> str:
    return next(c.value for c in at.code if "class " in c.value)


def test_a_text_model_on_a_typed_shape_shows_its_code_with_a_vocabulary_argument():
    at = open_app()
    at.selectbox(key=state.INPUT_SOURCE).set_value(state.CUSTOM_INPUT).run()
    at.text_input(key=state.INPUT_SHAPE_TEXT).set_value("12").run()
    add_blocks(at, "Embedding", "SequencePool", "Linear")
    assert not at.error, [e.value for e in at.error]
    code = code_of(at)
    assert "def __init__(self, vocab_size: int = 10000):" in code
    assert "nn.Embedding(num_embeddings=vocab_size" in code
    assert "--vocab-size" not in code and "--dataset" not in code
    assert any("No vocabulary is known" in c.value for c in at.caption)


def test_a_text_model_on_a_text_dataset_takes_the_dataset_vocabulary(tmp_path):
    import streamlit as st

    from core.data import register_upload

    rows = [[f"some words {i}", ["yes", "no"][i % 2]] for i in range(20)]
    path = tmp_path / "answers.csv"
    path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    info = register_upload("text", path, max_length=5)
    st.cache_data.clear()  # the page lists datasets through a cache other tests filled
    at = open_app()
    at.selectbox(key=state.INPUT_SOURCE).set_value("answers").run()
    add_blocks(at, "Embedding", "SequencePool", "Linear")
    assert not at.error, [e.value for e in at.error]
    assert f"def __init__(self, vocab_size: int = {info.vocab_size}):" in code_of(at)
    assert not any("No vocabulary is known" in c.value for c in at.caption)


def card_warnings(at, uid) -> list[str]:
    return [w.value for w in card(at, uid).warning]


def test_the_input_dataset_survives_a_page_switch_and_a_reload():
    at = open_app()
    at.selectbox(key=state.INPUT_SOURCE).set_value("mnist1d").run()
    add_blocks(at, "Flatten", "Linear")
    assert list(layer_table(at)["output shape"]) == ["40", "10"]
    at.switch_page("../pages/train.py").run()
    assert at.selectbox(key=state.TRAIN_DATASET).value == "mnist1d"  # Train offers it first
    at.switch_page("../pages/build.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key=state.INPUT_SOURCE).value == "mnist1d"
    assert not at.error and list(layer_table(at)["output shape"]) == ["40", "10"]
    draft = at.query_params[state.QP_DRAFT]
    draft = draft[0] if isinstance(draft, list) else draft
    assert spec_editor.decode(draft)["dataset"] == "mnist1d"
    reloaded = open_app(query_params={state.QP_DRAFT: draft})
    assert reloaded.selectbox(key=state.INPUT_SOURCE).value == "mnist1d"
    assert not reloaded.error


def test_a_saved_version_keeps_its_dataset():
    at = open_app()
    at.selectbox(key=state.INPUT_SOURCE).set_value("mnist1d").run()
    add_blocks(at, "Flatten", "Linear")
    at.text_input(key=state.SAVE_NAME).set_value("signal").run()
    at.button(key=state.BUILD_SAVE).click().run()
    assert runs.get_spec("signal").spec["dataset"] == "mnist1d"
    at.button(key=state.BUILD_NEW).click().run()
    at.selectbox(key=state.INPUT_SOURCE).set_value("digits").run()
    at.selectbox(key=state.SAVED_CHOICE).set_value(("signal", 1)).run()
    at.button(key=state.BUILD_OPEN).click().run()
    assert at.selectbox(key=state.INPUT_SOURCE).value == "mnist1d"


def test_the_save_name_is_never_empty_after_streamlit_drops_the_box():
    at = add_blocks(open_app(), "Flatten", "Linear")
    name = at.session_state[state.DRAFT].name
    at.switch_page("../pages/train.py").run()  # the Build widgets' values are dropped here
    at.switch_page("../pages/build.py").run()
    assert at.text_input(key=state.SAVE_NAME).value == name
    at.button(key=state.BUILD_SAVE).click().run()
    assert any("version 1" in s.value for s in at.success), [e.value for e in at.error]
    assert runs.get_spec(name).version == 1


def test_a_gru_reading_one_step_is_advised_and_the_button_permutes_its_input():
    at = open_app()
    at.selectbox(key=state.INPUT_SOURCE).set_value("mnist1d").run()
    add_blocks(at, "GRU", "SequencePool", "Linear")
    gru = blocks(at)[0].uid
    (advice,) = card_warnings(at, gru)
    assert "length 1" in advice and "Permute" in advice
    assert not any("every shape fits" in s.value for s in at.success)
    at.button(key=state.block_advice_key(gru, 0)).click().run()
    assert types(at) == ["Permute", "GRU", "SequencePool", "Linear"]
    assert blocks(at)[0].layer["dims"] == [1, 0]
    assert card_warnings(at, gru) == []
    assert list(layer_table(at)["output shape"])[:2] == ["40×1", "40×64"]
    assert any("every shape fits" in s.value for s in at.success)


def test_an_error_says_its_fix_in_words_and_offers_it_as_a_button():
    at = add_blocks(open_app(), "Conv2d", "Linear")
    linear = blocks(at)[1].uid
    (message,) = [e.value for e in card(at, linear).error]
    assert "Flatten block before it" in message and '{"type"' not in message
    at.button(key=state.block_advice_key(linear, 0)).click().run()
    assert types(at) == ["Conv2d", "Flatten", "Linear"]
    assert not at.error


def test_a_merge_without_inputs_says_where_to_choose_them():
    at = add_blocks(open_app(), "Conv2d", "Add")
    add = blocks(at)[1].uid
    (message,) = [e.value for e in card(at, add).error]
    assert "takes input from" in message and '"inputs"' not in message


def test_a_stale_label_from_the_browser_maps_back_to_its_block():
    labels = {"u1": "1. ReLU (relu1)", "u2": "2. Conv2d"}
    assert spec_editor.chosen_uids(["u1", "2. Conv2d"], labels) == ["u1", "u2"]
    assert spec_editor.chosen_uids(["1. ReLU", "u2"], labels) == ["u2"]  # renamed: dropped
    renamed = {**labels, "u1": "1. ReLU"}
    assert spec_editor.options_signature(labels) != spec_editor.options_signature(renamed)


def test_embedding_sits_with_the_sequence_layers_in_the_palette():
    at = open_app()
    families = {e.label.split(" ")[0]: e for e in at.sidebar.expander}
    assert "text" in families["RNN"].label
    assert [b.label for b in families["RNN"].button][0] == "Embedding"
    assert "Embedding" not in [b.label for b in families["Attention"].button]
