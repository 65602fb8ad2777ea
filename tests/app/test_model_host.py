"""The model thread: one probe slot (newest wins), debounce, jobs serve pending probes, errors
become messages. A fake prober records what the 'model' saw and from which thread."""

import threading
import time

from engine.errors import Cancelled
from engine.hijack.jobs import ModelJob
from lca_tui.messages import JobFinished, ModelJobWanted, ProbeAnswered, ProbeRequest
from lca_tui.model_host import ModelHost


class FakeProber:
    def __init__(self, delay=0.0):
        self.seen, self.threads, self.delay = [], set(), delay

    def probe(self, prompt, targets, **kw):
        self.seen.append(prompt)
        self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        if prompt == "boom":
            raise RuntimeError("kaboom")
        return f"result of {prompt}"


def _host(delay=0.0, debounce=0.15):
    posted = []
    host = ModelHost(posted.append, debounce=debounce)
    host.prober = FakeProber(delay)
    return host, posted


def _wait(pred, timeout=5.0):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.01)


def test_burst_of_edits_is_served_once_with_the_newest():
    host, posted = _host(debounce=1.0)
    host._idle_since = time.monotonic()  # just answered something: no leading edge
    for i in range(20):
        host.request_probe(ProbeRequest(i, f"prompt {i}"))
        time.sleep(0.01)
    _wait(lambda: posted)
    time.sleep(0.3)
    assert host.prober.seen == ["prompt 19"]
    assert isinstance(posted[0], ProbeAnswered) and posted[0].result == "result of prompt 19"
    host.close()


def test_isolated_edit_after_idle_is_served_at_once():
    host, posted = _host(debounce=0.5)
    time.sleep(0.6)
    t0 = time.monotonic()
    host.request_probe(ProbeRequest(1, "alone"))
    _wait(lambda: posted)
    assert time.monotonic() - t0 < 0.4  # well under the debounce
    host.close()


def test_probe_errors_become_messages_and_the_thread_lives_on():
    host, posted = _host()
    host.request_probe(ProbeRequest(1, "boom"))
    _wait(lambda: posted)
    assert posted[0].error == "RuntimeError: kaboom"
    host.request_probe(ProbeRequest(2, "fine"))
    _wait(lambda: len(posted) == 2)
    assert posted[1].result == "result of fine"
    host.close()


def test_jobs_serve_pending_probes_and_run_on_the_model_thread():
    host, posted = _host(debounce=0.05)
    seen_threads = []

    def job(lm, ctx):
        seen_threads.append(threading.get_ident())
        for _ in range(30):
            time.sleep(0.01)
            ctx.pause()  # the host's serve_probe
        return "done"

    host.submit(ModelJob(job))
    time.sleep(0.05)
    host.request_probe(ProbeRequest(7, "during the job"))
    _wait(lambda: any(isinstance(m, JobFinished) for m in posted))
    answered = [m for m in posted if isinstance(m, ProbeAnswered)]
    assert answered and answered[0].result == "result of during the job"
    done = next(m for m in posted if isinstance(m, JobFinished))
    assert done.result == "done" and done.error is None
    assert host.prober.threads == set(seen_threads) and threading.get_ident() not in seen_threads
    host.close()


def test_failing_job_posts_its_error():
    host, posted = _host()

    def job(lm, ctx):
        raise ValueError("bad job")

    host.submit(ModelJob(job))
    _wait(lambda: posted)
    assert isinstance(posted[0], JobFinished) and "bad job" in posted[0].error
    host.close()


def test_cancel_pressed_while_a_job_is_queued_is_kept():
    """The cancel of a job still waiting behind another is not lost when the job starts: it
    finishes at once as cancelled, without running; the job ahead of it is not cancelled."""
    host, posted = _host()
    gate, ran = threading.Event(), []

    def first(lm, ctx):
        gate.wait(5)
        return "first done"

    def second(lm, ctx):
        ran.append(1)
        return "second done"

    a = host.submit(ModelJob(first))
    b = host.submit(ModelJob(second))
    host.cancel(b)  # pressed while b waits behind a
    gate.set()
    _wait(lambda: len([m for m in posted if isinstance(m, JobFinished)]) == 2)
    done = {m.job_id: m for m in posted if isinstance(m, JobFinished)}
    assert done[a].result == "first done" and not done[a].cancelled
    assert done[b].cancelled and done[b].result is None and not ran
    host.close()


def test_cancel_reaches_the_running_job_through_its_own_event():
    host, posted = _host()
    started = threading.Event()

    def job(lm, ctx):
        started.set()
        t0 = time.monotonic()
        while not ctx.cancelled():
            assert time.monotonic() - t0 < 5
            time.sleep(0.01)
        return "stopped early"

    a = host.submit(ModelJob(job))
    started.wait(5)
    host.cancel(a)
    _wait(lambda: posted)
    assert posted[0].cancelled and posted[0].result == "stopped early"
    host.close()


def test_a_job_that_raises_cancelled_finishes_cancelled_with_its_partial_result():
    """The one rule (engine.job_context): a cancelled job raises ``Cancelled``; the host posts its
    ``partial`` as the result, flagged cancelled."""
    host, posted = _host()
    started = threading.Event()

    def job(lm, ctx):
        started.set()
        t0 = time.monotonic()
        while True:
            assert time.monotonic() - t0 < 5
            time.sleep(0.01)
            try:
                ctx.check()
            except Cancelled as exc:
                raise Cancelled("half done") from exc

    a = host.submit(ModelJob(job))
    started.wait(5)
    host.cancel(a)
    _wait(lambda: posted)
    assert posted[0].cancelled and posted[0].result == "half done" and posted[0].error is None
    host.close()


def test_job_ids_from_the_host_and_from_a_panel_request_never_collide():
    """A job the host numbers itself (a load) and one a panel numbered (ModelJobWanted) share one
    counter: cancelling the panel's job leaves the host's job to finish."""
    host, posted = _host()
    gate = threading.Event()

    def load(lm, ctx):
        gate.wait(5)
        return "loaded"

    def evaluated(lm, ctx):
        return "evaluated"

    wanted = ModelJobWanted(ModelJob(evaluated), reply_to=None)
    assert wanted.kind == "evaluated"
    a = host.submit(ModelJob(load))
    b = host.submit(wanted.job, job_id=wanted.job_id)
    assert a != b
    host.cancel(b)
    gate.set()
    _wait(lambda: len([m for m in posted if isinstance(m, JobFinished)]) == 2)
    done = {m.job_id: m for m in posted if isinstance(m, JobFinished)}
    assert done[a].result == "loaded" and not done[a].cancelled
    assert done[b].cancelled and done[b].result is None
    host.close()


class _Inbox:
    """A stand-in widget: collects what is posted to it."""

    def __init__(self):
        self.got = []

    def post_message(self, msg):
        self.got.append(msg)
        return True


def _reports_half(lm, ctx):
    ctx.progress(1, 2)
    return "ok"


def _sleeps(lm, ctx):
    time.sleep(0.3)


def test_answers_go_to_the_widget_that_asked():
    host, posted = _host()
    inbox = _Inbox()
    host.request_probe(ProbeRequest(1, "mine"), reply_to=inbox)
    host.submit(ModelJob(_reports_half), reply_to=inbox)
    _wait(lambda: len(inbox.got) == 3)
    kinds = [type(m).__name__ for m in inbox.got]
    assert kinds == ["ProbeAnswered", "JobProgress", "JobFinished"] and not posted
    host.close()


def test_probe_waiting_for_a_load_is_answered_by_the_loaded_model(monkeypatch):
    """A probe asked before the model is there gets no 'no model' error while a load is coming:
    the load serves it again against the new model."""
    host, posted = _host()
    host.prober = None
    gate = threading.Event()

    def fake_load(name, device, dtype):
        gate.wait(5)
        host.prober = FakeProber()
        return {"name": name}

    monkeypatch.setattr(host, "_load_now", fake_load)
    inbox = _Inbox()
    host.load("tiny")
    host.request_probe(ProbeRequest(1, "early"), reply_to=inbox)
    time.sleep(0.3)
    assert not inbox.got  # no error while the load is pending
    gate.set()
    _wait(lambda: inbox.got)
    assert inbox.got[0].result == "result of early" and inbox.got[0].error is None
    host.close()


def test_model_thread_takes_its_share_of_the_threads(monkeypatch):
    """Beside a training thread the model thread runs torch on its part of engine.threads.plan,
    so the two do not oversubscribe the cores; alone it takes the whole choice."""
    import torch

    from engine.threads import plan

    monkeypatch.setenv("LCA_TUI_THREADS", "2")
    host, posted = _host()
    seen = []
    host.prober.probe = lambda prompt, targets, **kw: seen.append(torch.get_num_threads()) or "ok"
    host.share = 2
    host.request_probe(ProbeRequest(1, "beside training"))
    _wait(lambda: len(posted) == 1)
    host.share = 1
    host.request_probe(ProbeRequest(2, "alone"))
    _wait(lambda: len(posted) == 2)
    assert seen == [plan(2)[-1], plan(1)[0]] == [1, 2]
    host.close()


def test_serves_at_once_only_when_idle_past_the_debounce():
    """The frame hold (lca_tui/frames.py) asks this before a request: a probe that waits behind a
    job or a debounce must not hold the screen."""
    host, posted = _host(delay=0.2, debounce=0.1)
    host._idle_since = time.monotonic() - 1.0
    assert host.serves_at_once()
    host.request_probe(ProbeRequest(1, "a"))
    assert not host.serves_at_once()  # one is waiting or running
    _wait(lambda: posted)
    assert not host.serves_at_once()  # just answered: a new request is debounced
    time.sleep(0.15)
    assert host.serves_at_once()
    host.submit(ModelJob(_sleeps))
    _wait(lambda: host.busy)
    assert not host.serves_at_once()  # a job runs
    _wait(lambda: not host.busy)
    host.prober = None
    time.sleep(0.15)
    assert not host.serves_at_once()  # no model yet
    host.close()


def test_a_job_answers_the_first_edit_after_a_quiet_spell_at_its_next_break():
    """Inside a job the debounce has the same leading edge as on an idle model thread: an isolated
    edit is answered at the job's next break, not a debounce later; an edit right after that answer
    (typing on) waits for the debounce, and the newest of a burst wins."""
    host, posted = _host(debounce=0.5)
    breaks = []

    def job(lm, ctx):
        for _ in range(150):  # 1.5 s of work with a break every 10 ms
            time.sleep(0.01)
            breaks.append(time.monotonic())
            ctx.pause()
        return "done"

    host.submit(ModelJob(job))
    _wait(lambda: len(breaks) > 5)
    t0 = time.monotonic()
    host.request_probe(ProbeRequest(1, "isolated"))
    _wait(lambda: any(isinstance(m, ProbeAnswered) for m in posted))
    waited = time.monotonic() - t0
    assert waited < 0.25, f"the isolated edit waited {waited:.3f} s (the debounce is 0.5 s)"
    t1 = time.monotonic()
    host.request_probe(ProbeRequest(2, "typing on"))
    host.request_probe(ProbeRequest(3, "typing on, newest"))
    _wait(lambda: len([m for m in posted if isinstance(m, ProbeAnswered)]) == 2)
    second = [m for m in posted if isinstance(m, ProbeAnswered)][1]
    assert second.request.seq == 3 and time.monotonic() - t1 >= 0.45
    _wait(lambda: any(isinstance(m, JobFinished) for m in posted))
    assert host.prober.seen == ["isolated", "typing on, newest"]
    host.close()
