"""Every kind of input the README shows a command taking, and every kind the code accepts, is named in that command's --help."""
import re, shlex
from pathlib import Path

import pytest

from mtssl_nb.cli import INPUTS, make_parser

ROOT = Path(__file__).resolve().parents[1]
SPEC = re.compile(r"^(?:[\w.]+=)?([a-z][a-z0-9]*):(?!//)\S")  # a data or run spec (`kind:REST`, or `key=kind:REST`), not a URL


def helps() -> dict[str, str]:
    "`mtssl CMD --help` of every subcommand, as argparse prints it (no wrapping of the epilog)."
    sub = make_parser()._subparsers._group_actions[0].choices
    return {name: p.format_help() for name, p in sub.items()}


def readme_commands():
    "(command, its arguments) of every `mtssl CMD ...` line in the README's code blocks."
    text, out = (ROOT / "README.md").read_text(), []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if m := re.match(r"(?:\.venv/bin/)?mtssl ([a-z-]+)\s*(.*)", line): out.append((m[1], shlex.split(m[2])))
    return out


def test_readme_inputs_are_in_the_help():
    h, cmds = helps(), readme_commands()
    assert len(cmds) >= 15, f"only {len(cmds)} mtssl lines found in the README's code blocks: the pattern no longer reads them"
    missing = [(cmd, a) for cmd, args in cmds for arg in args for a in arg.split(",") if (m := SPEC.match(a)) and f"{m[1]}:" not in h[cmd]]
    assert not missing, f"README arguments whose kind `mtssl CMD --help` does not name: {missing}"


def test_readme_prose_kinds_are_in_the_help():
    "Spec kinds the README's text names in backticks (`cifar10:ROOT:test`, `multiself:PATH`, ...) are in some command's help."
    every = "\n".join(helps().values())
    kinds = set(re.findall(r"`(?:[\w.]+=)?([a-z][a-z0-9]*):[A-Z~/.]", (ROOT / "README.md").read_text()))
    assert {"folder", "cifar10", "stl10"} <= kinds, kinds  # the README documents these; the pattern must see them
    assert not [k for k in kinds if f"{k}:" not in every]


def test_accepted_kinds_are_in_the_help():
    "The kinds each parser of specs accepts, read from its own refusal, are in the help of the commands that take them."
    from mtssl_nb.data import image_source
    from mtssl_nb.eval.depth import depth_data
    from mtssl_nb.eval.detection import detection_data
    h = helps()
    for parse, cmds in ((image_source, ("train", "experiment")), (detection_data, ("eval", "experiment")), (depth_data, ("eval", "experiment"))):
        with pytest.raises(ValueError) as e: parse("nosuchkind:x")
        accepted = re.findall(r"(?:^|[\s,])([a-z][a-z0-9]*)(?=:|\[:|,| or |$)", str(e.value).split("use ", 1)[1])
        assert len(accepted) >= 3, (parse.__name__, str(e.value))
        for cmd in cmds: assert not [k for k in accepted if k not in h[cmd]], (cmd, accepted)
    for cmd in ("eval", "export", "train"):  # every form of a run: `load_run` reads each one
        assert all(s in h[cmd] for s in ("a run folder", "a checkpoint file", "an export folder", "multiself:PATH")), cmd
    assert all(w in h["eval"] for w in ("shapes", "digits", "folder:ROOT", "cifar10:", "stl10:")), h["eval"]


def test_every_input_has_an_example():
    for kind, (title, items) in INPUTS.items():
        assert title and items, kind
        for what, example in items: assert what and example and "e.g." not in example, (kind, what)
    assert "e.g. multiself:~/ckpt/multiself/model.ckpt" in helps()["eval"]
