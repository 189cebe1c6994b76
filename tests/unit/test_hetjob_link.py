"""A heterogeneous job's link queues its successor with every component: longrun's own
options (the wait, the tag, the environment) in the first component, the others after `:`.
On the real cluster: tests/e2e/test_hetjob.py."""

from __future__ import annotations

from pathlib import Path

from jobside import JobSide

from longrun import protocol


def test_the_successor_has_every_component_and_the_tag_in_the_first(tmp_path: Path) -> None:
    side = JobSide(tmp_path, argv=["-p", "multi", "-N1", ":", "-p", "multi", "-N1", "-J", "two"])
    side.body_exits(protocol.CONTINUE_EXIT_CODE)
    assert side.run("200", 0).returncode == 0
    (call,) = side.submitted()
    words = call.split()[1:]
    split = words.index(":")
    first, rest = words[:split], words[split:]
    assert "--dependency=afterany:200" in first
    assert any(w.startswith("--comment=longrun:") for w in first)
    at = first.index("-p")
    assert first[at : at + 3] == ["-p", "multi", "-N1"]  # the first component's own
    assert rest[:6] == [":", "-p", "multi", "-N1", "-J", "two"]
    assert rest[6] == str(side.chain.link_script)
