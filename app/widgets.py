"""Shared widgets: schema-driven parameter inputs and the Build page's block cards.

Nothing here knows a particular layer: every input is generated from the registry's ParamSpec
(the same schema the builder validates against), and every run setting from TrainConfig's
field metadata.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from app import fixes, spec_editor, state
from app.formatting import count_text, parse_int_list, shape_text
from app.plain_text import md_escape
from app.spec_editor import UNSET, Block, Draft
from core.advice import Advice, Fix
from core.errors import StudioError

FAMILY_BADGES = {"CNN": "blue", "RNN": "green", "Attention": "orange", "Common": "gray"}


# ---- one parameter -----------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def is_textual(param: Any, shown: Any) -> bool:
    """Whether a parameter is typed as text: lists, words such as "same", or free text."""
    return (
        param.kind in ("int_list", "str")
        or (param.kind == "int" and bool(param.tuple_len or param.words))
        or isinstance(shown, list | tuple | str)
    )


def param_input(
    param: Any, value: Any, *, key: str, on_change: Callable[..., None], args: tuple = ()
) -> None:
    """One widget for one ParamSpec, pre-filled with `value` (UNSET = the schema default).

    The widget reports changes through `on_change(*args)`, which runs before the page does, so
    the shapes and the table drawn in the same run already include the change.
    """
    shown = param.default if value is UNSET else value
    label = param.name
    help_text = f"{param.help} Allowed: {param.allowed()}."
    common = {"key": key, "help": help_text, "on_change": on_change, "args": args}
    if param.kind == "bool":
        st.toggle(label, value=bool(shown), **common)
    elif param.kind == "choice":
        options = list(param.choices) + ([None] if param.nullable else [])
        st.selectbox(
            label,
            options,
            index=options.index(shown) if shown in options else 0,
            format_func=lambda o: "auto" if o is None else str(o),
            **common,
        )
    elif is_textual(param, shown):
        st.text_input(
            label,
            value=_as_text(shown),
            placeholder="auto" if param.nullable or shown is None else None,
            **common,
        )
    elif param.kind == "int":
        st.number_input(
            label,
            value=None if shown is None else int(shown),
            min_value=None if param.minimum is None else int(param.minimum),
            max_value=None if param.maximum is None else int(param.maximum),
            step=1,
            placeholder="auto" if param.nullable else "required",
            **common,
        )
    else:
        low, high = param.minimum, param.maximum
        st.number_input(
            label,
            value=None if shown is None else float(shown),
            min_value=None if low is None else float(low),
            max_value=None if high is None else float(high),
            step=0.05 if (low is not None and high is not None and high - low <= 1) else 0.1,
            format="%g",
            placeholder="auto" if param.nullable else "required",
            **common,
        )


def read_param(param: Any, raw: Any, *, textual: bool) -> Any:
    """A widget's raw value as the spec value; ValueError with a sentence when unreadable."""
    if param.kind in ("bool", "choice"):
        return raw
    if not textual:
        if raw is None:
            return None
        return int(raw) if param.kind == "int" else float(raw)
    text = str(raw or "").strip()
    if text == "":
        return None
    if param.kind == "str" or text in param.words:
        return text
    try:
        numbers = parse_int_list(text)
    except ValueError as error:
        words = f" or {' / '.join(param.words)}" if param.words else ""
        raise ValueError(f"{param.name}: {error}{words}") from None
    if param.kind == "int" and len(numbers) == 1:
        return numbers[0]
    return numbers


def apply_param(uid: str, param: Any, value: Any) -> None:
    """Write one parameter into the draft: an emptied optional box means "the default", an
    emptied required one is left missing (the trace then says what to fill in)."""
    block = draft().block(uid)
    if value is None and param.required:
        block.layer.pop(param.name, None)
        draft().revision += 1
        return
    if value is None and not param.nullable:
        value = param.default
    default = UNSET if param.required else param.default
    spec_editor.set_arg(draft(), uid, param.name, value, default=default)


# ---- block cards -------------------------------------------------------------------------------

PARAM_PROBLEMS = state.PARAM_PROBLEMS


def draft() -> Draft:
    return st.session_state[state.DRAFT]


def _on_move(uid: str, delta: int) -> None:
    spec_editor.move(draft(), uid, delta)


def _on_duplicate(uid: str) -> None:
    spec_editor.duplicate(draft(), uid)


def _on_delete(uid: str) -> None:
    if st.session_state.get(state.INSERT_AFTER) == uid:
        st.session_state[state.INSERT_AFTER] = None
    spec_editor.delete(draft(), uid)


def _on_select(uid: str) -> None:
    current = st.session_state.get(state.INSERT_AFTER)
    st.session_state[state.INSERT_AFTER] = None if current == uid else uid


def _on_fix(uid: str, fix: Fix) -> None:
    spec_editor.apply_fix(draft(), uid, fix)


def _on_param(uid: str, param: Any, textual: bool) -> None:
    key = state.block_param_key(uid, param.name)
    problems = st.session_state.setdefault(PARAM_PROBLEMS, {})
    try:
        value = read_param(param, st.session_state.get(key), textual=textual)
    except ValueError as error:
        problems[key] = str(error)
        return
    problems.pop(key, None)
    apply_param(uid, param, value)


def _on_inputs(uid: str, stem_of: Callable[[str], str], key: str, labels: dict) -> None:
    """The blocks chosen in "takes input from", by uid (a label the browser kept from an
    earlier run is mapped back to its block, never taken for one)."""
    chosen = spec_editor.chosen_uids(list(st.session_state.get(key) or []), labels)
    problem_key = state.block_key(uid, "inputs")
    problems = st.session_state.setdefault(PARAM_PROBLEMS, {})
    try:
        spec_editor.set_inputs(draft(), uid, chosen, stem_of=stem_of)
        problems.pop(problem_key, None)
    except StudioError as error:
        problems[problem_key] = str(error)


def _on_frozen(uid: str) -> None:
    frozen = bool(st.session_state[state.block_key(uid, "frozen")])
    spec_editor.set_arg(draft(), uid, "frozen", frozen, default=False)


def _on_id(uid: str) -> None:
    key = state.block_key(uid, "id")
    problems = st.session_state.setdefault(PARAM_PROBLEMS, {})
    try:
        spec_editor.set_id(draft(), uid, st.session_state.get(key))
        problems.pop(key, None)
    except StudioError as error:
        problems[key] = str(error)


def block_card(
    block: Block,
    *,
    index: int,
    layer_type: Any | None,
    row: Any | None,
    error: StudioError | None,
    reached: bool,
    earlier: Sequence[Block],
    stem_of: Callable[[str], str],
    advice: Sequence[Advice] = (),
) -> None:
    """One block: a header with its output shape and the select / move / copy / delete buttons,
    one input per schema parameter, its inputs for graphs, the error it causes (if any) and
    advice on what it will not learn; each with its fix as a button where one is obvious."""
    uid = block.uid
    family = layer_type.family if layer_type else "Common"
    selected = st.session_state.get(state.INSERT_AFTER) == uid
    with st.container(border=True, key=state.block_card_key(uid)):
        head, tools = st.columns([3, 2], gap="small", vertical_alignment="center")
        ident = f" `{block.id}`" if block.id else ""
        if row is not None:
            detail = f":blue[→ {shape_text(row.output_shape)}] · {count_text(row.params)} params"
        elif error is not None:
            detail = ":red[**error**]"
        else:
            detail = ":gray[not reached]" if not reached else ""
        badge = FAMILY_BADGES.get(family, "gray")
        frozen = bool(block.layer.get("frozen"))
        if frozen:
            detail += " :blue-badge[:material/ac_unit: frozen]"
        head.markdown(
            f"**{index}. {block.type}**{ident} :{badge}-badge[{family}]  \n{detail}",
            help=layer_type.description if layer_type else None,
        )
        with tools.container(horizontal=True, horizontal_alignment="right", gap="small"):
            _button(
                ":material/subdirectory_arrow_right:",
                uid,
                "select",
                _on_select,
                (uid,),
                "New blocks from the palette go right after this one (click again: at the end)",
                primary=selected,
            )
            _button(
                ":material/arrow_upward:",
                uid,
                "up",
                _on_move,
                (uid, -1),
                "Move up",
                disabled=index == 0,
            )
            _button(":material/arrow_downward:", uid, "down", _on_move, (uid, 1), "Move down")
            _button(":material/content_copy:", uid, "copy", _on_duplicate, (uid,), "Duplicate")
            _button(":material/delete:", uid, "delete", _on_delete, (uid,), "Delete")
        if frozen or (row is not None and row.params):
            st.toggle(
                "Frozen",
                value=frozen,
                key=state.block_key(uid, "frozen"),
                on_change=_on_frozen,
                args=(uid,),
                help="Its weights stay as loaded (from a run or a pretrained backbone): no "
                "gradient, not trained, BatchNorm statistics kept",
            )
        if layer_type is not None:
            _settings(block, layer_type, earlier=earlier, stem_of=stem_of)
        problems = st.session_state.get(PARAM_PROBLEMS, {})
        for key, problem in list(problems.items()):
            if key.startswith(state.block_key(uid, "")):
                st.warning(md_escape(problem))
        fixes_offered: list[Fix] = []
        if error is not None:
            message = str(getattr(error, "message", None) or error)
            st.error(md_escape(fixes.in_words(message)), icon=":material/error:")
            fix = fixes.fix_for(message, first_block=index == 0)
            if fix is not None:
                fixes_offered.append(fix)
        for item in advice:
            st.warning(md_escape(fixes.in_words(item.message)), icon=":material/lightbulb:")
            if item.fix is not None:
                fixes_offered.append(item.fix)
        for number, fix in enumerate(fixes_offered):
            st.button(
                fix.label,
                key=state.block_advice_key(uid, number),
                on_click=_on_fix,
                args=(uid, fix),
                icon=":material/build:",
            )


def _button(icon, uid, name, callback, args, help_text, *, primary=False, disabled=False):
    st.button(
        "",
        icon=icon,
        key=state.block_key(uid, name),
        help=help_text,
        on_click=callback,
        args=args,
        type="primary" if primary else "tertiary",
        disabled=disabled,
    )


def _settings(block: Block, layer_type: Any, *, earlier: Sequence[Block], stem_of) -> None:
    """Required parameters in the card; optional ones and the connections under one expander,
    so a Conv2d card shows its 2 essentials rather than 8 boxes. Merges (Add, Concat) and
    blocks already wired to earlier ones show their inputs openly."""
    params = list(layer_type.params)
    if len(params) <= 3:
        main, more = params, []
    else:
        main = [p for p in params if p.required]
        more = [p for p in params if not p.required]
    if not params:
        st.caption(layer_type.description)
    _param_grid(block, main)
    wired = layer_type.merge or bool(spec_editor.source_uids(draft(), block.uid))
    tucked_connections = bool(earlier) and not wired
    if more or tucked_connections:
        changed = sum(1 for p in more if p.name in block.layer)
        label = "More settings" if more else "Connections"
        if more and tucked_connections:
            label = "More settings and connections"
        with st.expander(label + (f" ({changed} changed)" if changed else "")):
            _param_grid(block, more)
            if tucked_connections:
                _connections(block, earlier=earlier, merge=False, stem_of=stem_of)
    if wired and earlier:
        _connections(block, earlier=earlier, merge=layer_type.merge, stem_of=stem_of)


def _param_grid(block: Block, params: list) -> None:
    if not params:
        return
    columns = st.columns(3)
    for position, param in enumerate(params):
        value = block.layer.get(param.name, UNSET)
        shown = param.default if value is UNSET else value
        with columns[position % 3]:
            param_input(
                param,
                value,
                key=state.block_param_key(block.uid, param.name),
                on_change=_on_param,
                args=(block.uid, param, is_textual(param, shown)),
            )


def _connections(block: Block, *, earlier: Sequence[Block], merge: bool, stem_of) -> None:
    labels = {
        b.uid: f"{i}. {b.type}" + (f" ({b.id})" if b.id else "") for i, b in enumerate(earlier)
    }
    chosen_now = [uid for uid in spec_editor.source_uids(draft(), block.uid) if uid in labels]
    # options are block uids (stable); the browser shows and reports their labels, which
    # change when a block moves or gets an id: the key follows the labels (a fresh box)
    key = state.block_inputs_key(block.uid, spec_editor.options_signature(labels))
    st.multiselect(
        "takes input from",
        options=list(labels),
        default=chosen_now,
        format_func=lambda uid: labels.get(uid, uid),
        key=key,
        on_change=_on_inputs,
        args=(block.uid, stem_of, key, labels),
        placeholder="choose two or more blocks" if merge else "the block just above",
        help="Empty: the output of the block just above. Choose earlier blocks to build skip "
        "connections; Add and Concat merge the blocks you choose.",
    )
    st.text_input(
        "id (other blocks connect to this name)",
        value=block.id or "",
        key=state.block_key(block.uid, "id"),
        on_change=_on_id,
        args=(block.uid,),
        placeholder="given automatically when another block connects here",
    )


# ---- run settings ------------------------------------------------------------------------------


def setting_input(field: dict[str, Any], *, key: str, value: Any = UNSET) -> Any:
    """One widget for one TrainConfig field (from `TrainConfig.schema()`)."""
    name = field["name"]
    kind = field["kind"]
    shown = field["default"] if value is UNSET else value
    label = name.replace("_", " ")
    help_text = field.get("help")
    optional = field.get("optional", False)
    if kind == "bool":
        return st.toggle(label, value=bool(shown), key=key, help=help_text)
    if kind == "choice":
        options = list(field["choices"])
        return st.selectbox(
            label,
            options,
            index=options.index(shown) if shown in options else 0,
            key=key,
            help=help_text,
        )
    if kind == "float_pair":
        text = st.text_input(label, value=_as_text(shown), key=key, help=help_text)
        try:
            return setting_value(field, text)
        except ValueError as error:
            st.warning(md_escape(error))
            return list(field["default"])
    minimum = field.get("minimum")
    maximum = field.get("maximum")
    if kind == "int":
        return st.number_input(
            label,
            value=None if shown is None else int(shown),
            min_value=None
            if minimum is None
            else int(minimum) + int(bool(field.get("exclusive_minimum"))),
            max_value=None if maximum is None or maximum > 2**53 else int(maximum),
            step=1,
            key=key,
            help=help_text,
            placeholder="empty" if optional else None,
        )
    return st.number_input(
        label,
        value=None if shown is None else float(shown),
        min_value=None if minimum is None or field.get("exclusive_minimum") else float(minimum),
        max_value=None if maximum is None or field.get("exclusive_maximum") else float(maximum),
        step=_float_step(shown),
        format="%g",
        key=key,
        help=help_text,
        placeholder="empty" if optional else None,
    )


def setting_value(field: dict[str, Any], raw: Any) -> Any:
    """A setting widget's raw value as the TrainConfig value; ValueError with a sentence."""
    if field["kind"] != "float_pair":
        return raw
    try:
        first, second = (float(v) for v in str(raw).replace(" ", "").split(","))
    except ValueError:
        label = field["name"].replace("_", " ")
        raise ValueError(
            f"{label}: write two numbers separated by a comma, such as 0.9, 0.999"
        ) from None
    return [first, second]


def _float_step(value: Any) -> float:
    """A tenth of the value's order of magnitude: 0.001 steps by 0.0001, 0.9 by 0.01."""
    if not value:
        return 0.01
    return 10.0 ** (math.floor(math.log10(abs(float(value)))) - 1)
