"""The hijack panel's model jobs (a mixin of ``HijackPanel``): asking for a sweep of n and an ES
evaluation (``engine/hijack/jobs.py``, run on the app's model thread) and taking their progress and
results (``JobProgress``, ``JobFinished``) into the sweep and ES views and the session. With a defense
chosen in the Repair view, ``e`` also asks for the defended ES curve (``jobs.efficacy_defended``), which
the ES view overlays as its own series. The Trace view
asks for and takes its own jobs (it is their ``reply_to``; its ``JobFinished`` bubbles through here
unmatched)."""

from __future__ import annotations

from textual.widgets import TabbedContent

from engine.hijack import jobs
from lca_tui.messages import JobFinished, JobProgress, ModelJobWanted, RecordResult
from lca_tui.records import Evaluation, Sweep


class HijackJobs:
    """Needs the panel's ``record``, ``records``, ``scheme``, ``n``, ``template``, ``views``,
    ``eval_job``, ``sweep_job``, ``overlay_job``, ``eval_results`` and ``show_error``."""

    def action_sweep(self) -> None:
        """P(true), P(false) against n = 0..max(n, 5) for this record (a job on the model thread)."""
        if self.record is None:
            self.show_error("choose a record first (r)")
            return
        self.query_one("#hijack-views", TabbedContent).active = "sweep"
        top = max(self.n, 5)
        record, scheme, template = self.record, self.scheme, self.template_for(self.scheme)
        req = ModelJobWanted(jobs.ModelJob(jobs.sweep, (record, scheme, top, template)),
                             reply_to=self, meta={"record": record, "scheme": scheme, "template": template})
        self.sweep_job = req.job_id
        self.post_message(req)

    def action_evaluate(self) -> None:
        """ES(n), n = 0..max(n, 5), over the built-in set (same relation as the record if one is chosen)."""
        from engine.hijack.schemes import scheme_records

        records, relation = scheme_records(self.records, self.scheme, self.record)
        if not records:
            self.show_error(f"no built-in record has a relation template for the {self.scheme} scheme")
            return
        self.query_one("#hijack-views", TabbedContent).active = "efficacy"
        scheme, top, template = self.scheme, max(self.n, 5), self.template_for(self.scheme)
        self.views["efficacy"].started(scheme, len(records), top)
        req = ModelJobWanted(jobs.ModelJob(jobs.efficacy, (records, scheme, top, template)),
                             reply_to=self, meta={"scheme": scheme, "records": len(records), "relation": relation,
                                                  "template": template})
        self.eval_job = req.job_id
        self.post_message(req)
        self.overlay_job = None
        self._ask_overlay(records, scheme, top, template)

    def _ask_overlay(self, records, scheme, top, template) -> None:
        """With a defense chosen in the Repair view, the defended ES curve of the same records after the
        plain one (its settings shaped on the chosen record with n = max(n, 1) sentences prepended)."""
        from engine.hijack.schemes import hijack_prefix

        if self.record is None:
            return
        prepend = hijack_prefix(self.record, scheme, max(self.n, 1), template)
        model = (self.app.model_info or {}).get("name")
        got = self.views["repair"].overlay(model, self.record, scheme, max(self.n, 1), prepend)
        if got is None:
            return
        defense, shape = got
        req = ModelJobWanted(jobs.ModelJob(jobs.efficacy_defended, (records, scheme, top, defense, template, shape)),
                             reply_to=self, meta={"label": self.views["repair"].label(), "scheme": scheme})
        self.overlay_job = req.job_id
        self.post_message(req)

    def template_for(self, scheme: str) -> str | None:
        return self.template if scheme == "custom" else None

    def on_job_progress(self, msg: JobProgress) -> None:
        if msg.job_id == self.eval_job:
            self.views["efficacy"].progressed(msg.done, msg.total)
            if msg.partial is not None:
                self.views["efficacy"].draw(msg.partial, self.eval_results, self.records)

    def on_job_finished(self, msg: JobFinished) -> None:
        if msg.job_id == self.overlay_job:
            self.overlay_job = None
            if msg.error:
                self.show_error(f"defended ES: {msg.error}")
            elif msg.result is not None:
                view = self.views["efficacy"]
                view.set_overlay(msg.meta["label"], msg.result)
                if self.eval_result is not None:
                    view.draw(self.eval_result, self.eval_results, self.records)
            return
        if msg.job_id == self.sweep_job:
            self.sweep_job = None
            if msg.error or msg.result is None:
                self.show_error(msg.error or "sweep cancelled")
                return
            self.sweep_result = msg.result
            self.views["sweep"].draw(msg.result)
            self.post_message(RecordResult.of(Sweep(msg.result, msg.meta["record"]), msg.meta))
        elif msg.job_id == self.eval_job:
            self.eval_job = None
            view = self.views["efficacy"]
            view.stopped()
            if msg.error or msg.result is None:
                self.show_error(msg.error or "evaluation cancelled before it started")
                view.cancelled()
                return
            self.eval_result = msg.result
            self.eval_results.pop((msg.result.model, msg.result.scheme), None)  # the newest goes last
            self.eval_results[(msg.result.model, msg.result.scheme)] = msg.result
            view.draw(msg.result, self.eval_results, self.records)
            view.finished(msg.result, msg.cancelled)
            self.post_message(RecordResult.of(Evaluation(msg.result, msg.meta.get("relation")), msg.meta))
