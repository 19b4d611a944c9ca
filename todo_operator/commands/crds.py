"""``todo-operator crds``: print (or write) the CRDs generated from the models."""

from __future__ import annotations

import argparse
import pathlib
import sys

import yaml

from todo_operator.domain import crds


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        help="write one <plural>.yaml file per CRD into this folder instead of printing them",
    )


def render(crd: dict[str, object]) -> str:
    return yaml.safe_dump(crd, sort_keys=False, width=120)


def run(args: argparse.Namespace) -> int:
    definitions = crds.all_crds()
    if args.output_dir is None:
        sys.stdout.write("---\n".join(render(crd) for crd in definitions))
        return 0
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for kind, crd in zip(crds.KINDS, definitions, strict=True):
        (args.output_dir / f"{kind.plural}.yaml").write_text(render(crd))
    return 0
