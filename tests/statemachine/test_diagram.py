"""The committed statemachine/flow.mmd is what statemachine/diagram.py makes
from the definition (the README embeds flow.mmd)."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_generator():
    spec = importlib.util.spec_from_file_location("diagram", REPO / "statemachine" / "diagram.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flow_mmd_is_generated_from_the_definition():
    diagram = load_generator()
    expected = diagram.render(json.loads((REPO / "statemachine" / "deployment.asl.json").read_text()))
    committed = (REPO / "statemachine" / "flow.mmd").read_text()
    assert committed == expected, "statemachine/flow.mmd is stale: run python3 statemachine/diagram.py"


def test_every_state_is_drawn():
    diagram = load_generator()
    asl = json.loads((REPO / "statemachine" / "deployment.asl.json").read_text())
    flow = (REPO / "statemachine" / "flow.mmd").read_text()
    for name in asl["States"]:
        assert f"  {diagram.node_id(name)}" in flow, name


def test_statemachine_readme_shows_the_current_diagram():
    readme = (REPO / "statemachine" / "README.md").read_text()
    flow = (REPO / "statemachine" / "flow.mmd").read_text()
    assert "```mermaid\n" + flow + "```" in readme, "statemachine/README.md: paste flow.mmd into its mermaid block"


def test_top_readme_shows_the_current_diagram():
    diagram = load_generator()
    readme = (REPO / "README.md").read_text()
    flow = (REPO / "statemachine" / "flow.mmd").read_text()
    assert diagram.TOP_MARKER + "\n```mermaid\n" + flow + "```" in readme, (
        "README.md: the state machine flow is stale: run python3 statemachine/diagram.py"
    )
