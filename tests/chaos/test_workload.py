"""The chaos workload is a function of its seed: two runs of one seed make the same changes, so
a run can be repeated as evidence."""

from __future__ import annotations

from typing import Any

from chaos.workload import Workload


def changes(seed: int, count: int = 300) -> list[tuple[Any, ...]]:
    workload = Workload.create(seed, staff_count=8, tag=f"s{seed}")
    made = []
    for _ in range(count):
        envelope = workload.next_change()
        data: Any = envelope["data"]
        made.append((envelope["type"], data["id"], data.get("revision"), data.get("attributes")))
    return made


def test_one_seed_makes_the_same_changes_every_time() -> None:
    assert changes(3) == changes(3)


def test_another_seed_makes_other_changes() -> None:
    assert changes(3) != changes(4)


def test_the_staff_include_one_without_a_user_and_one_graph_cannot_serve() -> None:
    workload = Workload.create(1, staff_count=6, tag="s1")

    assert [m.mailbox for m in workload.staff] == ["enabled"] * 4 + ["not enabled", "no user"]
    assert [m.has_mailbox for m in workload.staff] == [True] * 4 + [False, False]
