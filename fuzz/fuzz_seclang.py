"""Fuzz the SecLang parser and rule compiler: any text must load or raise RuleLoadError.

python fuzz/fuzz_seclang.py -runs=2000 [CORPUS_DIR ...]     # short run (CI)
python fuzz/fuzz_seclang.py -max_total_time=3600 fuzz/corpus/seclang   # long run
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from milliwatt.shield.waf import RuleLoadError
    from milliwatt.shield.waf.ruleset import RuleSet
    from milliwatt.shield.waf.seclang import parse_text


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    # a rejected rule file is the expected answer to bad input; anything else is a bug
    with contextlib.suppress(RuleLoadError):
        RuleSet().add(parse_text(text, "fuzz"))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
