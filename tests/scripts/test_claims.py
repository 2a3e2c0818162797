"""benchmarks/claims.yaml parses and names real demos; the verdicts follow the stated criterion, never the mood."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.claims import CLAIMS, Claim, ClaimError, judge, load_claims, verdict_table
from tests.conftest import REPO


def claim(**overrides) -> Claim:
    fields = dict(
        id="c",
        paper="p",
        claim="k",
        demo="make demo-x",
        metric="err",
        better="lower",
        pairs=[("mixed", "plain")],
        seeds=[0, 1, 2],
        wins=3,
    )
    return Claim(**{**fields, **overrides})


def test_every_claim_names_a_make_target_and_groups_twice_at_most() -> None:
    claims = load_claims()
    assert claims, f"{CLAIMS} holds no claim"
    targets = {line.split(":")[0] for line in (REPO / "Makefile").read_text().splitlines() if ":" in line}
    for c in claims.values():
        assert c.demo.removeprefix("make ") in targets, f"{c.id}: {c.demo} is not a make target"
        assert len(set(c.seeds)) == len(c.seeds) >= 3, f"{c.id}: three distinct seeds at least"
    assert set(load_claims(demo="make demo-mixing")) >= {"cutmix_beats_baseline", "k_images_beat_two"}


def test_lower_higher_and_equal_with_their_margins() -> None:
    values = {"mixed": {0: 9.0, 1: 9.5, 2: 10.1}, "plain": {0: 10.0, 1: 10.2, 2: 10.0}}
    assert not judge(claim(), values).holds  # seed 2 goes the other way: 2 of 3
    assert judge(claim(wins=2), values).holds
    assert not judge(claim(wins=2, margin=0.75), values).holds  # only seed 0 wins by more than 0.75
    assert judge(claim(better="higher", wins=1), values).holds
    same = {"mixed": {0: 80.0, 1: 81.0, 2: 79.0}, "plain": {0: 80.0, 1: 81.0, 2: 79.5}}
    assert not judge(claim(better="equal"), same).holds
    assert judge(claim(better="equal", margin=0.5), same).holds
    assert judge(claim(better="at least"), same).holds is False  # seed 2: 79.0 below 79.5
    assert judge(claim(better="at least", margin=0.5), same).holds  # keeps or raises, within 0.5
    kept = {"mixed": {0: 3.0, 1: 3.0, 2: 2.0}, "plain": {0: 3.0, 1: 2.0, 2: 2.0}}
    assert judge(claim(better="at least"), kept).holds


def test_any_needs_one_pair_and_all_needs_every_pair() -> None:
    values = {"a": {0: 1.0, 1: 1.0, 2: 1.0}, "b": {0: 2.0, 1: 2.0, 2: 2.0}, "c": {0: 0.0, 1: 0.0, 2: 0.0}}
    pairs = [("a", "b"), ("a", "c")]  # a beats b everywhere, never c
    assert not judge(claim(pairs=pairs), values).holds
    assert judge(claim(pairs=pairs, require="any"), values).holds
    table = verdict_table({"c": claim(pairs=pairs, require="any")}, values)
    assert "| c | a vs b |" in table and "| 3 / 3 | holds |" in table and "| 0 / 3 | does not hold |" in table
    assert "**holds**" in table and "1.00 ± 0.00" in table


def test_missing_values_and_bad_entries_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ClaimError, match=r"no err for 'mixed' at seeds \[2\]"):
        judge(claim(), {"mixed": {0: 1.0, 1: 1.0}, "plain": {0: 1.0, 1: 1.0, 2: 1.0}})
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims:\n  - id: x\n    paper: p\n    better: lower\n")
    with pytest.raises(
        ClaimError, match="claim 'x' lacks claim, demo, metric, pairs, seeds, wins, blind, regime"
    ):
        load_claims(bad)
    entry = "{id: x, paper: p, claim: k, demo: d, metric: m, better: %s, pairs: [[a, b]], seeds: [0, 1, 2], wins: 3"
    bad.write_text("claims:\n  - " + entry % "smaller" + ", blind: true, regime: imagenet}\n")
    with pytest.raises(ClaimError, match="better must be lower, higher, equal or at least, got 'smaller'"):
        load_claims(bad)
    bad.write_text("claims:\n  - " + entry % "lower" + ", blind: true, regime: pretrained}\n")
    with pytest.raises(ClaimError, match="regime must be one of .*got 'pretrained'"):
        load_claims(bad)
    bad.write_text("claims:\n  - " + entry % "lower" + ", blind: false, regime: imagenet}\n")
    with pytest.raises(ClaimError, match="blind must be true or say why not, got False"):
        load_claims(bad)


def test_the_rows_that_cannot_fail_are_marked_and_regimes_filter() -> None:
    claims = load_claims()
    assert not claims[
        "temperature_keeps_accuracy"
    ].counted  # an identity: a positive temperature keeps argmax
    assert claims["temperature_keeps_accuracy"].sanity and claims["links_tell_heads_apart"].built_in
    assert claims["bihpf_beats_cnndetection_unseen"].blind is not True  # a one-seed table came first
    assert set(load_claims(regime="as the paper")) >= {
        "cutmix_beats_baseline",
        "classwise_loss_calibrates_ts",
    }
    assert "cutmix_beats_baseline" not in load_claims(regime="random init")


def test_mean_sd_shows_no_spread_for_one_seed() -> None:
    from benchmarks.claims import mean_sd

    assert mean_sd([1.0, 2.0, 3.0]) == "2.00 ± 1.00" and mean_sd([4.19]) == "4.19"


def test_the_evidence_names_the_command_as_run_from_the_repository(tmp_path: Path, monkeypatch) -> None:
    """A demo started from anywhere records ``python scripts/<demo>.py ...``, a command the reader can rerun."""
    import json
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    import demo_common

    argv = [str(REPO / "scripts" / "demo_x.py"), "--seeds", "0", "--recipe", "lr 0.03"]
    monkeypatch.setattr(sys, "argv", argv)
    written = demo_common.write_evidence("demo_x", "| a |\n", {"groups": {}}, 1.25, folder=tmp_path)
    record = json.loads((tmp_path / "demo_x.json").read_text())
    command = "python scripts/demo_x.py --seeds 0 --recipe 'lr 0.03'"  # quoted, so it pastes into a shell
    assert record["command"] == command and record["minutes"] == 1.2
    assert written.read_text().startswith(f"`{command}` at ")
    assert demo_common.script_path("/elsewhere/run.py") == "/elsewhere/run.py"
