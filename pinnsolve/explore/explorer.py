"""Several solutions from one initialization: the explorer.

After the main training (attempt 0, whose result is the first candidate), the explorer runs
``attempts`` searches. What a search starts from and minimises is the strategy's
(:mod:`pinnsolve.explore.strategy`; the bundled ones, ``deflation`` (recommended), ``restarts``
(the fair baseline), ``bbi``, ``kick`` and ``continuation``, are described in
:mod:`pinnsolve.explore.strategies`). The explorer does the rest, the same for every strategy:

Every candidate (the end of a search the strategy deems worth it) is polished on the *undeflated*
problem (Levenberg–Marquardt with the method of multipliers, ``[polish]`` tolerances), accepted
when its residual RMS and largest constraint violation pass ``accept_residual`` /
``accept_infeasibility``, and is new when its relative distance
(:func:`~pinnsolve.explore.deflation.relative_distance`) to every solution in the catalogue
exceeds ``distance``. Exploring ends after ``attempts``, after ``patience`` attempts in a row found
nothing new, or when the strategy has nothing left to try. Every attempt is logged (outcome,
residual, steps, time) for the summary.

Attempts run in rounds of ``trajectories``, every attempt of a round from the state (network,
multipliers, catalogue) the round began with; the round's records are judged in attempt order.
Under torchrun attempt i of a round runs on rank i mod world; a strategy may run a rank's share of
a round together (bbi and kick as one batched ensemble, deflation side by side in lockstep); then
each end is polished.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import torch
from torch import Tensor

from ..ansatz import image_state
from ..devices import on_device
from ..problem.symmetry import Symmetry
from ..train import PhaseOutcome, Tolerances
from .catalogue import Catalogue, Found, closest
from .strategy import RUN_STOPS, ExploreRun, Strategy, copy_state


class Explorer:
    """Runs the attempts of one strategy and keeps the catalogue (see the module docstring).

    Built before any training, so the multipliers every attempt starts from are the initial ones.
    Searches log every step and end on ``search_patience``; a candidate is polished with the
    ``[polish]`` Levenberg–Marquardt settings and the same patience (a hopeless one stops)."""

    def __init__(self, run: ExploreRun, strategy: type[Strategy]):
        self.run = run
        self.settings = s = run.config.explore
        p = run.config.polish
        self.search_rule = replace(run.rule, max_steps=s.search_steps, patience=s.search_patience,
                                   min_improvement=1e-3, log_every=1)  # fmt: skip
        self.search_tolerances = Tolerances(s.accept_residual, s.accept_infeasibility,
                                            p.tolerance_step)  # fmt: skip
        self.damping = p.damping
        self._polish_rule = replace(self.search_rule, max_steps=p.gauss_newton_steps)
        self._polish_tolerances = Tolerances(p.tolerance_residual, p.tolerance_infeasibility,
                                             p.tolerance_step)  # fmt: skip
        self.catalogue = Catalogue(s.distance, s.distance_floor)
        #: one record per attempt, for the summary
        self.log: list[dict] = []
        #: the main training's polished result when it was not accepted (kept, not lost)
        self.unaccepted: Found | None = None
        #: candidates that failed the acceptance tolerances (exported under ``rejected/``; their
        #: provenance says why)
        self.rejected: list[Found] = []
        self.attempt = 0
        self.since_new = 0
        #: the first attempt of the round under way
        self.round_start = 0
        #: the multipliers every attempt starts from: taken here, before any training or resume
        self.initial_multipliers = run.constraints.state_dict()
        #: where fields are compared and deflated (the interior collocation points, set by run)
        self.points: Tensor | None = None
        self.strategy = strategy(self)
        #: the problem's symmetries whose images of solutions are polished (``[explore]
        #: symmetries``)
        self.symmetries = run.problem.checked_symmetries() if s.symmetries else []
        if run.ranks.world > s.trajectories:
            run.trainer.progress_message(
                f"explore: {run.ranks.world} ranks, {s.trajectories} search(es) per round: "
                f"{run.ranks.world - s.trajectories} rank(s) wait during the searches"
            )

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "catalogue": self.catalogue.state_dict(),
            "log": list(self.log),
            "attempt": self.attempt,
            "since_new": self.since_new,
            "unaccepted": asdict(self.unaccepted) if self.unaccepted else None,
            "rejected": [asdict(r) for r in self.rejected],
            "strategy": self.strategy.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        like = next(self.run.model.parameters())
        self.catalogue.load_state_dict(state["catalogue"], like)
        self.log = list(state["log"])
        self.attempt = state["attempt"]
        self.since_new = state["since_new"]
        self.unaccepted = Found(**state["unaccepted"]) if state["unaccepted"] else None
        self.rejected = [Found(**r) for r in state["rejected"]]
        self.strategy.load_state_dict(state["strategy"])

    def solutions(self) -> list[Found]:
        """What the run reports: the catalogue in its stable order; when nothing was accepted,
        the main training's polished result (its provenance says ``accepted: false``)."""
        if self.catalogue.entries or self.unaccepted is None:
            return self.catalogue.sorted()
        return [self.unaccepted]

    # -- what strategies use ------------------------------------------------------------------
    @torch.no_grad()
    def fields(self) -> Tensor:
        """The network's fields on the comparison points (what dedup and deflation measure)."""
        return self.run.model(self.points).detach()

    def polish(self, resume: dict | None, name: str = "gauss_newton") -> PhaseOutcome:
        """The undeflated Levenberg–Marquardt polish of the current network (``name``: its
        phase's name in the history)."""
        p = self.run.config.polish
        return self.run.trainer.gauss_newton(
            self.run.stacked_residuals(), self._polish_rule, self._polish_tolerances, p.damping,
            resume=resume, name=name, linear_solver=p.linear_solver,
            cg_iterations=p.cg_iterations,
        )  # fmt: skip

    def run_inner(
        self, k: int, stage: str, search_end: Tensor | None, resume: dict | None,
        phase: Callable[[dict | None], Any], checkpoints: bool,
    ) -> Any:  # fmt: skip
        """Run an inner phase with its checkpoints wrapped into the explorer's state (or
        dropped: without ``checkpoints`` the last one is the round's start)."""
        trainer = self.run.trainer
        outer = trainer.checkpoint

        def wrapped(inner: dict | None) -> None:
            if checkpoints:
                self.run.checkpoint(
                    {"attempt": k, "stage": stage, "inner": inner, "search_end": search_end}
                )

        trainer.checkpoint = wrapped
        try:
            return phase(resume)
        finally:
            trainer.checkpoint = outer

    # -- the phase ----------------------------------------------------------------------------
    def explore(self, resume: dict | None = None) -> PhaseOutcome:
        """Attempt 0 (polish and judge the main training's result), then the searches, in rounds
        of ``trajectories`` attempts (see :meth:`_round`)."""
        started = time.monotonic()
        s = self.settings
        self.run.to_polish_settings()
        self.points = self.run.stacked_residuals().objective.interior
        steps, reason = 0, "explored all attempts"
        while self.attempt <= s.attempts:
            if s.patience and self.since_new >= s.patience:
                reason = f"no new solution in {self.since_new} attempts (patience)"
                break
            if done := self.strategy.finished():
                reason = done
                break
            ks = [0] if self.attempt == 0 else list(
                range(self.attempt, min(self.attempt + s.trajectories, s.attempts + 1))
            )  # fmt: skip
            self.round_start = ks[0]
            known = len(self.catalogue.entries)
            records, n, stop = self._round(ks, resume)
            resume = None
            steps += n
            for record in records:  # a round cut by the time limit: what it reached
                self._judge(record)
            if not stop:
                n, stop = self._images(known)
                steps += n
            if stop:
                reason = stop
                break
            self._adopt(records[-1])
            self.attempt = ks[-1] + 1
            self.run.checkpoint(None)  # the round is in the catalogue: the next starts afresh
        rows = self.run.trainer.history.rows
        final = rows[-1]["loss"] if rows else math.nan
        return PhaseOutcome("explore", steps, reason, final, time.monotonic() - started)

    def _round(self, ks: list[int], resume: dict | None) -> tuple[list[dict], int, str | None]:
        """Attempts ``ks``, every one from the state (network, multipliers, catalogue) the round
        began with, split over the ranks (attempt i of the round on rank i mod world). Returns
        every attempt's record in order (the same on every rank), this rank's steps, and the run's
        stop reason when it is being stopped on any rank (the round is then dropped: a resumed run
        repeats it, with the same result, since an attempt depends only on that state).

        Alone and one attempt per round, an attempt checkpoints inside its search and polish and
        resumes there; otherwise checkpoints fall at round ends. A round cut by the time limit
        returns what its attempts reached (:meth:`_cut`), so the run keeps it."""
        run, ranks = self.run, self.run.ranks
        inner = ranks.world == 1 and len(ks) == 1
        start = (copy_state(run.model.state_dict()), run.constraints.state_dict())
        share = ks[ranks.rank :: ranks.world]
        mine, n, searched, stop = [], 0, {}, None
        started = time.monotonic()
        together = self.strategy.search_round(share, start) if len(share) > 1 else None
        together_s = time.monotonic() - started if together is not None else 0.0
        if together is not None:
            searched, n, stop = together
        if stop == "time_limit":
            mine = [self._cut(k, *searched[k]) for k in share if k in searched]
        for k in share if not stop else ():
            run.model.load_state_dict(start[0])
            run.constraints.load_state_dict(start[1])
            resuming = resume if inner and resume is not None and resume["attempt"] == k else None
            record, steps, stop = self._attempt(k, resuming, inner, searched.get(k))
            n += steps
            if record is not None:
                mine.append(record)
            if stop:
                break
        for record in mine:  # searches run side by side are timed once, as the round's
            record.update(round=ks[0], round_search_s=together_s)
        everyone = ranks.all_gather_objects((mine, stop))
        stops = [stop for _, stop in everyone if stop]
        if "interrupted" in stops:  # a resumed run repeats the round
            return [], n, "interrupted"
        records = sorted((r for part, _ in everyone for r in part), key=lambda r: r["attempt"])
        return records, n, stops[0] if stops else None

    def _images(self, first: int) -> tuple[int, str | None]:
        """Polish and judge the images of the solutions catalogued from entry ``first`` on under
        each of the problem's symmetries, and of the images accepted in turn, until the orbits
        close. An image that duplicates a known solution (or an earlier image) is skipped
        unpolished. Split over the ranks like a round. Returns the steps taken and the run's stop
        reason when it is being stopped."""
        steps, index = 0, first
        while self.symmetries and index < len(self.catalogue.entries):
            todo = self._unknown_images(index)
            share = todo[self.run.ranks.rank :: self.run.ranks.world]
            mine, stop = [], None
            for symmetry, state in share:
                record, n, stop = self._image(index, symmetry, state)
                steps += n
                if record is not None:
                    mine.append(record)
                if stop:
                    break
            everyone = self.run.ranks.all_gather_objects((mine, stop))
            stops = [stop for _, stop in everyone if stop]
            if "interrupted" in stops:
                return steps, "interrupted"
            for record in sorted((r for part, _ in everyone for r in part),
                                 key=lambda r: r["image"]["order"]):  # fmt: skip
                self._judge(record)
            if stops:
                return steps, stops[0]
            index += 1
        return steps, None

    def _unknown_images(self, index: int) -> list[tuple[Symmetry, dict]]:
        """The images of catalogue entry ``index`` that are new: farther than ``distance`` from
        every solution known and from each other."""
        run, source = self.run, self.catalogue.entries[index]
        seen = [e.values for e in self.catalogue.entries]
        dim = run.problem.geometry().dim
        out = []
        for symmetry in self.symmetries:
            state = image_state(run.model, source.model_state, *symmetry.point_map(dim),
                                symmetry.factors(run.problem.fields))  # fmt: skip
            run.model.load_state_dict(state)
            values = self.fields()
            if closest(values, seen, self.catalogue.distance, self.catalogue.floor) is None:
                seen.append(values)
                out.append((symmetry, state))
        return out

    def _image(
        self, index: int, symmetry: Symmetry, state: dict
    ) -> tuple[dict | None, int, str | None]:
        """The polished image ``state`` of catalogue entry ``index``: its record for
        :meth:`_judge` (None when the run is being stopped), the steps taken and that stop."""
        run, started = self.run, time.monotonic()
        run.model.load_state_dict(state)
        run.constraints.load_state_dict(self.initial_multipliers)
        start = self.fields()
        source = self.catalogue.entries[index].provenance
        k = source["attempt"]
        polish = self.run_inner(k, "polish", start, None, self.polish, False)
        if polish.stop_reason == "interrupted":
            return None, polish.steps, polish.stop_reason
        record = self._record(k, start, None, polish, started)
        order = (index, self.symmetries.index(symmetry))
        image = {"symmetry": symmetry.name, "of": dict(source), "order": order}
        record.update(round=self.round_start, round_search_s=0.0, image=image)
        stop = polish.stop_reason if polish.stop_reason in RUN_STOPS else None
        return record, polish.steps, stop

    def _cut(self, k: int, search: PhaseOutcome, model: dict, multipliers: dict) -> dict:
        """The record of attempt ``k`` whose search (run with its round) the time limit cut."""
        self.run.model.load_state_dict(model)
        self.run.constraints.load_state_dict(multipliers)
        return self._record(k, self.fields(), search, None, time.monotonic())

    def _attempt(
        self, k: int, resume: dict | None, checkpoints: bool, searched: tuple | None = None
    ) -> tuple[dict | None, int, str | None]:
        """One attempt: search (k ≥ 1) and polish. Returns its record for :meth:`_judge` (None
        when the run is being stopped), the steps taken and that stop reason. ``searched``: the
        search already ran with its round (its outcome, end network and multipliers)."""
        run = self.run
        started = time.monotonic()
        stage = resume["stage"] if resume else ("search" if k else "polish")
        search_end = resume.get("search_end") if resume else None
        search = None
        if stage == "search" and searched is not None:
            search = searched[0]
            run.model.load_state_dict(searched[1])
            run.constraints.load_state_dict(searched[2])
        elif stage == "search":
            if resume is None:
                self.strategy.start(k)
            search = self.run_inner(k, "search", None, resume and resume["inner"],
                                    lambda r: self.strategy.search(k, r), checkpoints)  # fmt: skip
            if search.stop_reason == "interrupted":
                return None, search.steps, search.stop_reason
            if search.stop_reason == "time_limit":  # judged as it is: no time for a polish
                record = self._record(k, self.fields(), search, None, started)
                return record, search.steps, search.stop_reason
        # steps taken here (a round's searches run together were counted where they ran)
        steps = search.steps if search is not None and searched is None else 0
        if search is not None:
            search_end = self.fields()
            stage, resume = "polish", None
            if not self.strategy.worth_polishing(search):
                return self._record(k, search_end, search, None, started), steps, None
        polish = self.run_inner(k, "polish", search_end, resume and resume["inner"],
                                self.polish, checkpoints)  # fmt: skip
        steps += polish.steps
        if polish.stop_reason == "interrupted":
            return None, steps, polish.stop_reason
        stop = polish.stop_reason if polish.stop_reason in RUN_STOPS else None
        return self._record(k, search_end, search, polish, started), steps, stop

    def _record(self, k, search_end, search, polish, started) -> dict:
        """What an attempt ended with, as plain CPU data (it may travel to other ranks): the
        network and multipliers, its fields, residual RMS and infeasibility, and how the search
        and polish went. ``candidate`` is False when the search did not converge; a search cut
        by the time limit is a candidate when its end already meets the acceptance tolerances."""
        run = self.run
        with torch.no_grad():
            _, ev = run.stacked_residuals().residual()
        cut = search is not None and polish is None and search.stop_reason == "time_limit"
        passes = cut and self.search_tolerances.within(ev, run.constraints)
        return on_device({
            "attempt": k, "candidate": polish is not None or search is None or passes,
            "cut": cut,
            "values": self.fields(),
            "residual_rms": ev.residual_rms(), "residual": ev.measured_residual(),
            "relative": ev.scale is not None,
            "infeasibility": float(run.constraints.max_infeasibility(ev.g)),
            "model": run.model.state_dict(), "multipliers": run.constraints.state_dict(),
            "search_end": search_end, "step": run.trainer.history.step, "rank": run.ranks.rank,
            "search_steps": search.steps if search else 0,
            "search_stop": search.stop_reason if search else None,
            "polish_steps": polish.steps if polish else 0,
            "wall_time_s": time.monotonic() - started,
            "strategy": self.strategy.shared(),
        }, "cpu")  # fmt: skip

    def _adopt(self, record: dict) -> None:
        """Continue from where the round's last attempt ended (its network, multipliers and the
        strategy's shared state), as one process running the attempts in turn would."""
        self.run.model.load_state_dict(record["model"])
        self.run.constraints.load_state_dict(record["multipliers"])
        self.strategy.adopt(record["strategy"])

    def _judge(self, attempt: dict) -> None:
        """Accept, de-duplicate and catalogue the polished candidate of an attempt's record
        (none when its search did not converge), and log the attempt."""
        s = self.settings
        k, rms, infeasibility = attempt["attempt"], attempt["residual"], attempt["infeasibility"]
        like = next(self.run.model.parameters())
        values = attempt["values"].to(like)
        image = attempt.get("image")
        strategy = "symmetry" if image else s.strategy if k else "training"
        record = {"attempt": k, "strategy": strategy, "residual_rms": attempt["residual_rms"],
                  "infeasibility": infeasibility, "solution": None}  # fmt: skip
        if image:
            record["image"] = {"symmetry": image["symmetry"], "of": image["of"]}
        if attempt["relative"]:  # what acceptance compared: relative to the largest term
            record["relative_residual"] = rms
        finite = math.isfinite(rms) and math.isfinite(infeasibility)
        if not attempt["candidate"]:
            record["outcome"] = (
                "cut by the time limit" if attempt["cut"] else "search did not converge"
            )  # fmt: skip
        elif not (finite and rms <= s.accept_residual and infeasibility <= s.accept_infeasibility):
            record["outcome"] = "rejected"
            record["why"] = _why(rms, infeasibility, s.accept_residual, s.accept_infeasibility)
        elif (index := self.catalogue.match(values)) is not None:
            record["outcome"], record["duplicate_of"] = "duplicate", index
        provenance = {"strategy": strategy, "attempt": k, "step": attempt["step"]}
        if self.run.ranks.world > 1:
            provenance["rank"] = attempt["rank"]
        if image:
            provenance["image"] = record["image"]
        found = Found(attempt["model"], values, provenance, attempt["residual_rms"], infeasibility)
        if record.get("outcome") == "rejected":
            self.rejected.append(replace(found, provenance={**provenance, "why": record["why"]}))
        if "outcome" not in record:
            self.catalogue.entries.append(found)
            record["outcome"], record["solution"] = "new", len(self.catalogue.entries) - 1
        elif k == 0 and not image and record["outcome"] == "rejected":
            self.unaccepted = replace(found, provenance={**provenance, "accepted": False})
            self.run.trainer.progress_message(
                f"explore: the trained solution is rejected: residual "
                f"{_measure(rms, attempt['relative'])} "
                f"(accept_residual {s.accept_residual:g}), largest violation {infeasibility:.2e} "
                f"(accept_infeasibility {s.accept_infeasibility:g}); it is reported unless a "
                "search finds one that passes"
            )
        if not image:  # an image is no search: patience and the strategy count searches
            if record["outcome"] == "new":
                self.since_new = 0
            elif k:
                self.since_new += 1
            if k:
                self.strategy.judged(record, attempt)
        record.update({key: attempt[key] for key in
                       ("search_steps", "search_stop", "polish_steps", "wall_time_s", "round",
                        "round_search_s", "step")})  # fmt: skip
        self.log.append(record)
        who = (f"image ({image['symmetry']}) of attempt {k}'s solution" if image
               else f"attempt {k} ({strategy})")  # fmt: skip
        self.run.trainer.progress_message(
            f"explore: {who}: {record['outcome']}, residual "
            f"{_measure(rms, attempt['relative'])}{_progress(record)}, "
            f"{len(self.catalogue.entries)} solution(s) so far"
        )


def _progress(record: dict) -> str:
    """How far an attempt's search and polish got, for the terminal: a 2D search runs for
    minutes, and "did not converge" alone does not say whether it stopped early or ran out."""
    parts = []
    if record["search_steps"]:
        stop = f" ({record['search_stop']})" if record["search_stop"] else ""
        parts.append(f"search {record['search_steps']} steps{stop}")
    if record["polish_steps"]:
        parts.append(f"polish {record['polish_steps']} steps")
    return "".join(f"; {part}" for part in parts)


def _measure(residual: float, relative: bool) -> str:
    """How a residual was measured, for the terminal (collocation points, corner-weighted)."""
    what = "relative to the largest term" if relative else "RMS"
    return f"{residual:.2e} ({what}, on the collocation points)"


def _why(residual: float, infeasibility: float, accept_residual: float, accept_inf: float) -> str:
    """Which acceptance tolerance a candidate failed, in a few words."""
    failed = []
    if not residual <= accept_residual:
        failed.append(f"residual {residual:.2e} > accept_residual {accept_residual:g}")
    if not infeasibility <= accept_inf:
        failed.append(f"infeasibility {infeasibility:.2e} > accept_infeasibility {accept_inf:g}")
    return "; ".join(failed)
