"""Hyperparameter search under a time budget, with KerasTuner (``mmzoo.fit(..., time_budget=SECONDS)``).

The space: fusion kind, branch width multiplier, learning rate and dropout.
Every trial trains with early stopping on the validation split and is scored
on it (accuracy, macro F1 for multi-label, -RMSE for regression); the test
split is never seen. Every trial also stops when the budget runs out (after
the batch in progress; the best epoch's weights are restored), so a slow
first trial cannot overrun it, and the best trial's model is returned as it
is. KerasTuner's ``RandomSearchOracle`` proposes the trials;
ours stops proposing once the next trial would likely overrun the budget
(the mean duration of the trials so far), so the search ends inside it. The
first trial is always the default settings, so a search never does worse on
validation than no search.
"""

from __future__ import annotations

import tempfile
import time

TRIAL_DEFAULTS = {"fusion": "concat", "width": 1.0, "learning_rate": 1e-3, "dropout": 0.3}


def _space(kt, fusions):
    hp = kt.HyperParameters()
    hp.Choice("fusion", list(fusions), default=TRIAL_DEFAULTS["fusion"] if "concat" in fusions else fusions[0])
    hp.Choice("width", [0.5, 1.0, 1.5], default=1.0)
    hp.Choice("learning_rate", [3e-4, 1e-3, 3e-3], default=1e-3)
    hp.Choice("dropout", [0.1, 0.3, 0.5], default=0.3)
    return hp


def search(plan, train_manifest, valid_manifest, settings, time_budget, fusion="auto"):
    """Searches the settings of ``mmzoo.fit`` inside ``time_budget`` seconds.

    Args:
        plan: The ``DataPlan``.
        train_manifest: Training rows.
        valid_manifest: Validation rows (selection).
        settings: ``fit``'s training settings (epochs, batch size, seed...).
        time_budget: Seconds for the whole search (> 0).
        fusion: ``"auto"`` searches ``concat``/``late``/``attention``/``weighted_sum``;
            a kind fixes it.

    Returns:
        ``(best_settings, trials, best_run)``: the best trial's ``fusion``,
        ``width``, ``learning_rate`` and ``dropout``; one dict per trial
        (settings, validation score, best epoch, seconds); and the best
        trial's ``(model, history, valid_report, info)``.

    Raises:
        ValueError: If ``time_budget`` is not a positive number.
    """
    import keras_tuner as kt  # noqa: PLC0415

    from mmzoo.training import fit as fit_lib  # noqa: PLC0415

    if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)) or time_budget <= 0:
        raise ValueError(f"`time_budget` must be a positive number of seconds. Received: time_budget={time_budget!r}")
    if len(plan.features) == 1:
        fusions = ("concat",)
    elif fusion == "auto":
        fusions = ("concat", "late", "attention", "weighted_sum")
    else:
        fusions = (fusion,)
    start = time.perf_counter()
    deadline = start + time_budget
    durations = []
    best_run = {}

    class BudgetOracle(kt.oracles.RandomSearchOracle):
        """Random search that stops proposing trials when the budget would be overrun."""

        def populate_space(self, trial_id):
            elapsed = time.perf_counter() - start
            expected = sum(durations) / len(durations) if durations else 0.0
            if durations and elapsed + expected > time_budget:
                return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
            if not durations:  # the first trial: the defaults
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": self.hyperparameters.values}
            return super().populate_space(trial_id)

    trials = []

    class Tuner(kt.engine.base_tuner.BaseTuner):
        def run_trial(self, trial):
            values = dict(trial.hyperparameters.values)
            began = time.perf_counter()
            run = {**settings, **values, "verbose": 0, "deadline": deadline}
            outcome = fit_lib._train_once(plan, train_manifest, valid_manifest, **run)
            report = outcome[2]
            seconds = time.perf_counter() - began
            durations.append(seconds)
            score = fit_lib._primary_score(report, plan.task)
            if "score" not in best_run or score > best_run["score"]:
                best_run.update(score=score, outcome=outcome)
            trials.append({**values, "valid_score": round(float(score), 4), **outcome[3]})
            if settings.get("verbose"):
                print(f"trial {len(trials)}: {values} -> validation score {score:.4f} ({seconds:.0f} s)")
            return {"score": float(score)}

        def save_model(self, trial_id, model, step=0):
            """Nothing to write: ``search`` keeps the best trial's model in memory and returns it."""

        def load_model(self, trial):
            raise NotImplementedError("mmzoo's search returns the best trial's model; it saves no trial files.")

    with tempfile.TemporaryDirectory(prefix="mmzoo_search_") as directory:
        oracle = BudgetOracle(
            objective=kt.Objective("score", "max"), max_trials=1000, hyperparameters=_space(kt, fusions),
            seed=settings["seed"],
        )
        tuner = Tuner(oracle=oracle, directory=directory, project_name="search", overwrite=True)
        tuner.search()
        best = tuner.get_best_hyperparameters(1)[0].values
    return {k: best[k] for k in TRIAL_DEFAULTS}, trials, best_run["outcome"]
