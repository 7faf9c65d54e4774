"""Build page: the "Frozen" toggle on a block card writes the spec extension and marks the
block on the card and the architecture diagram."""

from __future__ import annotations

import json

from app import state
from app.spec_editor import to_spec
from tests.pages.conftest import add_blocks, blocks, open_app


def test_freezing_a_block_marks_it_in_the_spec_card_and_diagram():
    at = add_blocks(open_app(), "Conv2d", "ReLU", "Flatten", "Linear")
    uid = blocks(at)[0].uid
    toggles = {t.key for t in at.toggle}
    assert state.block_key(uid, "frozen") in toggles
    assert state.block_key(blocks(at)[1].uid, "frozen") not in toggles  # ReLU has no weights
    at.toggle(key=state.block_key(uid, "frozen")).set_value(True).run()
    assert not at.exception, at.exception
    assert to_spec(at.session_state[state.DRAFT])["layers"][0]["frozen"] is True
    assert any("frozen" in m.value for m in at.markdown)
    diagram = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "❄ frozen" in json.dumps(diagram, ensure_ascii=False)
    at.toggle(key=state.block_key(uid, "frozen")).set_value(False).run()
    assert "frozen" not in to_spec(at.session_state[state.DRAFT])["layers"][0]
