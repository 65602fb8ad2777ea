"""Training snapshots coalesce without losing events: a waiting snapshot is merged into the next
one of the same run (Textual drops the older message when ``can_replace`` says so)."""

from textual.app import App

from lca_tui.messages import TrainSnapshot


def _ev(step):
    return {"event": "train", "step": step}


def test_can_replace_merges_deltas_of_the_same_run_in_order():
    older = TrainSnapshot("run-a", [_ev(1), _ev(2)], "running")
    newer = TrainSnapshot("run-a", [_ev(3)], "running")
    other = TrainSnapshot("run-b", [_ev(9)], "running")
    assert not older.can_replace(other) and other.events == [_ev(9)]
    assert older.can_replace(newer)
    assert [e["step"] for e in newer.events] == [1, 2, 3]


class _Sink(App):
    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, list[int]]] = []

    def on_train_snapshot(self, msg: TrainSnapshot) -> None:
        self.seen.append((msg.run_id, [e["step"] for e in msg.events]))


async def test_a_backlog_is_delivered_as_fewer_messages_with_every_event():
    app = _Sink()
    async with app.run_test() as pilot:
        # posted faster than the app handles them (no await in between): a backlog
        for step in range(1, 41):
            app.post_message(TrainSnapshot("run-a" if step % 10 else "run-b", [_ev(step)], "running"))
        await pilot.pause(0.2)
    steps_a = [s for run, steps in app.seen if run == "run-a" for s in steps]
    steps_b = [s for run, steps in app.seen if run == "run-b" for s in steps]
    assert steps_a == [s for s in range(1, 41) if s % 10] and steps_b == [10, 20, 30, 40]
    assert len(app.seen) < 40  # coalesced
