"""tie=average: lookup / select_max / attend return means, compared exactly.

Each program below is checked three ways on hypothesis inputs: the reference evaluator
against a plain-Python statement of the program written here with Fractions (the semantics),
and the compiled model on the hull, brute and torch backends against the reference, token for
token at every position.  The programs are built so that means land exactly on the compared
thresholds often (ties at 1/2, means equal to a digit), where a float comparison would go wrong.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasp2d.backends.reference import evaluate
from rasp2d.compiler.api import compile_source
from rasp2d.lang.errors import Rasp2dError

VOCAB = "vocab { a b c d e 0 1 2 3 4 5 6 7 8 9 T F }\nmax_len 48\n"
LETTERS = "abcde"


def letter(t: str) -> int:
    return LETTERS.index(t) if t in LETTERS else -1


def digit(t: str) -> int:
    return int(t) if t.isdigit() else 0


LOOKUP_DEFAULT = VOCAB + """
let key = parse_int(tokens, "", 10, default=-1)
let m = lookup(key, key, indices % 4, default=-1, tie=average)
let c = lookup(key, 3, indices, default=-1, tie=average)
emit if m >= 3/2 then (if c * 2 >= indices then "T" else "F") else (if c == -1 then "a" else "b")
"""


def lookup_default_oracle(xs: list[str]) -> list[str]:
    out = []
    for i in range(len(xs)):
        keys = [int(x) if x.isdigit() else -1 for x in xs[:i + 1]]
        same = [j % 4 for j in range(i + 1) if keys[j] == keys[i]]
        m = Fraction(sum(same), len(same))
        threes = [j for j in range(i + 1) if keys[j] == 3]
        c = Fraction(sum(threes), len(threes)) if threes else -1
        if m >= Fraction(3, 2):
            out.append("T" if c * 2 >= i else "F")
        else:
            out.append("a" if c == -1 else "b")
    return out


NEAREST = VOCAB + """
let key = 2 * parse_int(tokens, "", 10, default=-1)        # even keys only
let m = lookup(key, 2 * (indices % 5) + 1, indices % 3, tie=average)   # odd queries: always a tie of distance
emit if m > 1 then "T" else if m == 1 then "a" else "F"
"""


def nearest_oracle(xs: list[str]) -> list[str]:
    out = []
    for i in range(len(xs)):
        keys = [2 * int(x) if x.isdigit() else -2 for x in xs[:i + 1]]
        q = 2 * (i % 5) + 1
        best = min(abs(k - q) for k in keys)
        vals = [j % 3 for j in range(i + 1) if abs(keys[j] - q) == best]
        m = Fraction(sum(vals), len(vals))
        out.append("T" if m > 1 else "a" if m == 1 else "F")
    return out


SELECT_ATTEND = VOCAB + """
let letter_score = int(tokens == "a") + 2 * int(tokens == "b") + 2 * int(tokens == "c")
let d = parse_int(tokens, "", 10, default=0)
let s = select_max(letter_score, d + indices % 2, tie=average)
let t = attend(1, indices % 3, letter_score, d % 2, d, tie=average)
emit if s + t >= 5 then "T" else if s - t != 0 then "a" else "F"
"""


def select_attend_oracle(xs: list[str]) -> list[str]:
    score = [{"a": 1, "b": 2, "c": 2}.get(x, 0) for x in xs]
    out = []
    for i in range(len(xs)):
        best = max(score[:i + 1])
        vals = [digit(xs[j]) + j % 2 for j in range(i + 1) if score[j] == best]
        s = Fraction(sum(vals), len(vals))
        att = [score[j] + (i % 3) * (digit(xs[j]) % 2) for j in range(i + 1)]
        tv = [digit(xs[j]) for j in range(i + 1) if att[j] == max(att)]
        t = Fraction(sum(tv), len(tv))
        out.append("T" if s + t >= 5 else "a" if s - t != 0 else "F")
    return out


PROGRAMS = {
    "lookup_default": (LOOKUP_DEFAULT, lookup_default_oracle),
    "nearest": (NEAREST, nearest_oracle),
    "select_attend": (SELECT_ATTEND, select_attend_oracle),
}
_compiled: dict = {}


def compiled(name):
    if name not in _compiled:
        _compiled[name] = compile_source(PROGRAMS[name][0], f"<{name}>")
    return _compiled[name]


def model_outputs(model, ids: list[int], backend: str) -> list[int]:
    if backend == "torch":
        from rasp2d.backends.torch_backend import TorchDecoder
        dec = TorchDecoder(model)
    else:
        from rasp2d.backends.hull_runtime import HullDecoder
        dec = HullDecoder(model, cache=backend)
    return [dec.feed(t) for t in ids]


def check(name: str, xs: list[str], backends: tuple[str, ...]) -> None:
    res = compiled(name)
    g, m = res.graph, res.model
    ids = [g.vocab.index(x) for x in xs]
    ref = evaluate(g, ids)[g.output]
    assert [g.vocab[t] for t in ref] == PROGRAMS[name][1](xs), f"reference disagrees with the oracle on {xs}"
    for backend in backends:
        assert model_outputs(m, ids, backend) == ref, f"{backend} disagrees with the reference on {xs}"


inputs = st.lists(st.sampled_from(list("abcde0123456789")), min_size=1, max_size=40)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_average_programs(name):
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(inputs)
    def run(xs):
        check(name, xs, ("hull", "brute"))

    run()


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_average_programs_torch(name):
    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(inputs)
    def run(xs):
        check(name, xs, ("torch",))

    run()


@pytest.mark.parametrize("snippet, message", [
    ('let m = lookup(tokens, tokens, tokens, tie=average)\nemit tokens', "averages numbers"),
    ('let m = lookup(tokens, tokens, indices, tie=average)\nemit if m * indices > 2 then "a" else "b"',
     "can only be compared"),
    ('let m = select_max(indices, indices, tie=average)\nemit if m then "a" else "b"', "expected bool"),
    ('let m = select_max(indices, indices, tie=average)\nlet k = lookup(m, 1, indices, default=0)\nemit tokens',
     "can only be compared"),
])
def test_average_misuse_is_a_clear_error(snippet, message):
    with pytest.raises(Rasp2dError, match=message):
        compile_source(VOCAB + snippet, "<misuse>")


def test_mean_too_fine_to_compare_is_refused():
    src = "vocab { a b }\nmax_len 1048576\nlet m = select_max(1, indices * 1000000, tie=average)\n" \
          "emit if m > 5 then \"a\" else \"b\""
    with pytest.raises(Rasp2dError, match="cannot be compared exactly"):
        compile_source(src, "<fine>")
