"""The loader's libyaml fast path reads every config exactly as the pure-Python parser does.

config/loader.py composes with libyaml when PyYAML has it and falls back to the pure-Python
parser on any complaint; this pins that the two agree, node for node (tag, value, kind and
line/column), on every config in the repo, the broken corpus included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from opstui.config import loader

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    [*ROOT.glob("examples/*.yaml"), *ROOT.glob("tests/config/broken/*.yaml"),
     ROOT / "src/opstui/demo/demo.yaml"]
)


def _shape(node: Node | None) -> Any:
    if node is None:
        return None
    where = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, ScalarNode):
        return ("scalar", node.tag, node.value, node.style or None, where)
    if isinstance(node, MappingNode):
        pairs = [(_shape(k), _shape(v)) for k, v in node.value]
        return ("map", node.tag, node.flow_style, where, pairs)
    return ("seq", node.tag, node.flow_style, where, [_shape(n) for n in node.value])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_fast_path_reads_the_same_tree(path: Path) -> None:
    if loader._FAST_LOADER is None:
        pytest.skip("PyYAML without libyaml: the loader uses the pure-Python parser only")
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        return  # the loader refuses it before any YAML is parsed
    try:
        slow = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return  # the loader reads it with the pure-Python parser too (the fallback)
    assert _shape(loader._compose(text)) == _shape(slow)
    assert _shape(yaml.compose(text, Loader=loader._FAST_LOADER)) == _shape(slow)
