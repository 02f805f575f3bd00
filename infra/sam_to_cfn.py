"""Turn infra/template.yaml (SAM) into the CloudFormation that AWS deploys,
offline, so checkov can judge the real IAM roles, rules and permissions.

`sam build`/`sam package` would upload code and replace the local paths; here
`CodeUri` becomes a placeholder S3 object and `DefinitionUri` is inlined from
statemachine/ (it must exist: a missing definition is an error, not a
placeholder), which is what the transform needs and changes nothing that
checkov looks at.

Usage: python infra/sam_to_cfn.py infra/template.yaml OUT.json
"""

import json
import os
import sys
from pathlib import Path

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

PLACEHOLDER_CODE = "s3://offline-placeholder/code.zip"


class NoManagedPolicies:
    """The template names no managed policies; any lookup is a mistake."""

    def load(self):
        return {}


def resolve_local_paths(template: dict, base: Path) -> dict:
    globals_fn = template.get("Globals", {}).get("Function", {})
    if isinstance(globals_fn.get("CodeUri"), str):
        globals_fn["CodeUri"] = PLACEHOLDER_CODE
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = PLACEHOLDER_CODE
        if kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            asl = base / props["DefinitionUri"]
            props["Definition"] = json.loads(asl.read_text())
            del props["DefinitionUri"]
    return template


def main() -> int:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    template = resolve_local_paths(yaml_parse(src.read_text()), src.parent)
    # The transform fills AWS::Region for its own use; any region will do.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    cfn = transform(template, {}, NoManagedPolicies(), passthrough_metadata=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cfn, indent=2, sort_keys=True) + "\n")
    print(f"{src} -> {out}: {len(cfn['Resources'])} CloudFormation resources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
