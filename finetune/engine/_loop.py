"""``train``: the custom training loop every fine-tuning (and pruning, QAT) run goes through."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from reports.console import progress

from ._batches import with_progress

from ._callbacks import Hooks, StopTraining
from ._data import DataPosition
from ._errors import EngineConfigError, TrainingDivergedError
from ._freeze import inference_mode_layers, select_trainable, stage_at, variable_name
from ._monitor import Monitor, Summaries
from ._optim import build_optimizer
from ._options import TrainOptions
from ._report import EvalRecord, TrainReport
from ._restore import restore
from ._schedules import Constant, with_stages
from ._state import History, TrainState
from ._step import make_eval_step, make_train_step
from ._strategy import (
    choose_strategy, gpu_present, is_chief, model_precision, precision_policy, strategy_name, worker_index,
)
from ._task import check_task, checkpointed

log = logging.getLogger("ckptkit.finetune")


def train(task, train_dataset_fn, *, steps: int, checkpoint_dir, eval_dataset_fn=None, strategy=None,
          callbacks=(), options: TrainOptions | None = None, **overrides) -> TrainReport:
    """Train ``task`` for ``steps`` steps in total, resuming from ``checkpoint_dir`` when it holds a checkpoint.

    ``task``: a task, or a no-argument factory the engine calls inside the
    strategy's scope and the mixed-precision policy.  ``train_dataset_fn(epoch)``
    returns that epoch's batches; ``eval_dataset_fn()`` the validation batches.
    Options are TrainOptions fields, given as ``options=`` and/or keywords.
    """
    opts = TrainOptions.of(options, overrides)
    if steps < 1:
        raise EngineConfigError(f"steps {steps}: expected the total number of training steps (>= 1)")
    run = _Run(task, train_dataset_fn, eval_dataset_fn, steps, Path(checkpoint_dir), strategy, callbacks, opts)
    try:
        return run.execute()
    finally:
        run.close()


class _Run:
    def __init__(self, task, train_dataset_fn, eval_dataset_fn, steps, checkpoint_dir, strategy, callbacks, opts):
        self.opts, self.steps = opts, steps
        self.strategy = strategy or choose_strategy()
        self.chief = is_chief(self.strategy)
        self.jit_compile = gpu_present() if opts.jit_compile is None else opts.jit_compile
        with self.strategy.scope():
            self.task = _task_in_scope(task, self.strategy, opts.mixed_precision)
            self.candidates = list(self.task.model.trainable_variables)
            self.optimizer = build_optimizer(opts.optimizer, weight_decay=opts.weight_decay,
                                             mixed_precision=opts.mixed_precision)
            _inner(self.optimizer).build(self.candidates)  # every slot now: checkpoints keep one structure
            self.state = TrainState(checkpointed(self.task), self.optimizer, checkpoint_dir, chief=self.chief,
                                    worker=worker_index(self.strategy), max_to_keep=opts.max_to_keep)
        schedule = opts.schedule if callable(opts.schedule) else Constant(opts.schedule)
        self.schedule = with_stages(schedule, opts.stages)
        self.train_dataset_fn, self.eval_dataset_fn = train_dataset_fn, eval_dataset_fn
        self.hooks = Hooks(callbacks)
        self.summaries = Summaries(opts.tensorboard_dir, self.chief, getattr(self.task, "tensorboard_tag", None))
        self.monitor = Monitor(opts.early_stopping, opts.overfit_window)
        self.eval_step = make_eval_step(self.task) if eval_dataset_fn is not None else None
        self.history, self.restore_report, self.resumed_from = History(), None, None
        self.stage, self.train_step, self.inference_bn, self.no_gradient = None, None, [], []
        self.timed = {"waited": 0.0, "busy": 0.0, "steps": 0}
        self.window = {"waited": 0.0, "busy": 0.0, "steps": 0}
        self.stopped_early, self.stop_reason, self.saved_at, self.evaluated_at = False, None, None, 0

    # -- the run ------------------------------------------------------------------------------------
    def execute(self) -> TrainReport:
        self._start()
        self.hooks("on_train_begin", self)
        bar = progress(self.steps, "train", "step", quiet=None if self.chief else True, initial=self.step)
        try:
            while self.step < self.steps and not self.stopped_early:
                self._one_step()
                bar.update(self.step - bar.n)
        except StopTraining as stop:
            self.stop_reason = f"callback: {stop}"
            log.info("training stopped at step %d by a callback: %s", self.step, stop)
        finally:
            bar.close()
        self.hooks("on_epoch_end", self.data.epoch)
        if self.eval_step is not None and self.evaluated_at != self.step:
            self._evaluate(final=True)
        if self.saved_at != self.step:
            self._save()
        if self.opts.optimizer.use_ema:  # after the save: the checkpoint resumes training, the model exports EMA
            _inner(self.optimizer).finalize_variable_values(self.candidates)
        report = self._report()
        self.hooks("on_train_end", report)
        return report

    def _start(self) -> None:
        latest = self.state.latest()
        if latest:
            self.history = self.state.resume(latest)
            self.resumed_from = latest
            log.info("resumed from %s at step %d", latest, int(self.state.step.numpy()))
        elif self.opts.fine_tune_checkpoint:
            self.restore_report = restore(self.task, self.opts.fine_tune_checkpoint,
                                          self.opts.fine_tune_checkpoint_type, strict=self.opts.strict_restore)
            log.info("%s", self.restore_report.describe())
            for name in self.restore_report.missing:
                self._warn(f"fine-tune checkpoint has no {name}; it keeps its fresh initial value")
        self.step = self.start_step = int(self.state.step.numpy())
        for name, markdown in self.opts.text_summaries:
            self.summaries.text(self.step, name, markdown)
        self.data = DataPosition(self.train_dataset_fn, self.strategy, int(self.state.epoch.numpy()),
                                 int(self.state.step_in_epoch.numpy()))
        self._replay()

    def _replay(self) -> None:
        """Bring early stopping and the overfitting watch up to the resumed step."""
        for record in self.history.evals:
            stop = self.monitor.update(record, self._train_mean(self.evaluated_at, record.step))
            self.monitor.overfit_warning()
            self.evaluated_at = record.step
            self.stopped_early = stop and record.step == self.step
            if self.stopped_early:
                self.stop_reason = f"early stopping (before the resume at step {self.step})"

    def _one_step(self) -> None:
        self._enter_stage(stage_at(self.opts.stages, self.step))
        started = time.perf_counter()
        self.hooks("on_step_begin", self.step)
        asked, epoch = time.perf_counter(), self.data.epoch
        batch = self.data.next()
        waited = time.perf_counter() - asked
        if self.data.epoch != epoch:
            self.hooks("on_epoch_end", epoch)
        if hasattr(self.task, "on_train_step"):
            self.task.on_train_step(self.step)
        losses, learning_rate = self.train_step(batch)
        values, learning_rate = {k: float(v) for k, v in losses.items()}, float(learning_rate)
        self.step += 1
        if not math.isfinite(values["total"]):
            raise TrainingDivergedError(f"the loss became {values['total']} at step {self.step} (learning rate "
                                        f"{learning_rate:.3g}); lower the learning rate or set grad_clip_norm")
        self.history.add_step(values, learning_rate)
        self.hooks("on_step_end", self.step, {**values, "learning_rate": learning_rate})
        self._time(waited, time.perf_counter() - started - waited)  # evaluation and checkpoints not included
        self._log(learning_rate)
        if self.eval_step is not None and self.opts.eval_every and self.step % self.opts.eval_every == 0:
            self.stopped_early = self._evaluate()
        if self.opts.checkpoint_every and self.step % self.opts.checkpoint_every == 0:
            self._save()

    def _enter_stage(self, index) -> None:
        """(Re)build the train step when training starts or a gradual-unfreezing stage begins."""
        if self.train_step is not None and index == self.stage:
            return
        self._release_batchnorm()
        patterns = self.opts.freeze_variables + (self.opts.stages[index].freeze if index is not None else ())
        selection = select_trainable(self.candidates, self.opts.update_trainable_variables, patterns)
        for pattern in selection.unmatched_patterns:
            self._warn(f"freeze pattern {pattern!r} matches no trainable variable")
        if not selection.trainable:
            raise EngineConfigError(f"nothing left to train{f' in stage {index}' if index is not None else ''}: "
                                    f"update_trainable_variables/freeze_variables exclude all "
                                    f"{len(self.candidates)} trainable variables")
        self.inference_bn = inference_mode_layers(self.task.model, selection.frozen)
        for layer in self.inference_bn:
            layer.trainable = False
        self.stage, self.first_of_trace = index, True
        self.train_step = make_train_step(
            self.task, self.optimizer, self.strategy, selection.trainable, self.schedule, self.state.step,
            grad_clip_norm=self.opts.grad_clip_norm, loss_scale=self.opts.mixed_precision == "float16",
            jit_compile=self.jit_compile, no_gradient=self.no_gradient)
        log.info("%s%d variables train, %d frozen", f"stage {index}: " if index is not None else "",
                 len(selection.trainable), len(selection.frozen))

    def _release_batchnorm(self) -> None:
        for layer in self.inference_bn:
            layer.trainable = True
        self.inference_bn = []

    # -- evaluation, checkpoints, logs ----------------------------------------------------------------
    def _evaluate(self, final: bool = False) -> bool:
        """Validation losses and the task's metrics; True when early stopping says stop."""
        dataset = self.eval_dataset_fn() if callable(self.eval_dataset_fn) else self.eval_dataset_fn
        sums, batches, first = {}, 0, None
        quiet = None if self.chief else True
        for batch in with_progress(dataset, "validate", quiet):
            losses, outputs = self.eval_step(batch)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + float(value)
            batches += 1
            first = first or (batch, outputs)
        if not batches:
            raise EngineConfigError("the evaluation dataset yields no batches")
        metrics = {("val_loss" if k == "total" else f"val_{k}"): v / batches for k, v in sums.items()}
        task_metrics = self.task.evaluate(with_progress(dataset, "metrics", quiet))
        metrics.update({k: float(v) for k, v in task_metrics.items()})
        record = EvalRecord(self.step, metrics)
        self.history.evals.append(record)
        stop = self.monitor.update(record, self._train_mean(self.evaluated_at, self.step))
        self.evaluated_at = self.step
        warning = self.monitor.overfit_warning()
        if warning:
            self._warn(warning)
        self._eval_summaries(metrics, first)
        self.hooks("on_eval_end", self.step, metrics)
        log.info("step %d evaluation: %s", self.step, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        if stop and not final:
            best = self.monitor.best
            self.stop_reason = (f"early stopping: {best.name} did not improve for {self.monitor.since_best} "
                                f"evaluations (best {best.value:.4g} at step {best.step})")
            log.info("%s", self.stop_reason)
        return stop and not final

    def _eval_summaries(self, metrics: dict, first) -> None:
        self.summaries.scalars("eval", self.step, metrics)
        draw = getattr(self.task, "draw_predictions", None)
        if draw is not None and first is not None and self.summaries.writers:
            self.summaries.images(self.step, "predictions", draw(*first), self.opts.sample_images)
        self.summaries.flush()

    def _train_mean(self, after: int, upto: int) -> float | None:
        values = self.history.losses.get("total", [])[after:upto]
        return sum(values) / len(values) if values else None

    def _save(self) -> None:
        path = self.state.save(self.data.epoch, self.data.step_in_epoch, self.history)
        self.saved_at = self.step
        log.debug("saved %s", path)

    def _time(self, waited: float, busy: float) -> None:
        if self.first_of_trace:  # tracing and compiling are not throughput
            self.first_of_trace = False
            return
        for acc in (self.timed, self.window):
            acc["waited"] += waited
            acc["busy"] += busy
            acc["steps"] += 1

    def _log(self, learning_rate: float) -> None:
        every = self.opts.log_every
        if not every or self.step % every:
            return
        means = {k: sum(v[-every:]) / len(v[-every:]) for k, v in self.history.losses.items()}
        speed, idle = _rates(self.window)
        self.window = {"waited": 0.0, "busy": 0.0, "steps": 0}
        log.info("step %d/%d  loss %.4g  lr %.3g  %.1f steps/s  input idle %.0f%%", self.step, self.steps,
                 means["total"], learning_rate, speed, 100 * idle)
        self.summaries.scalars("train", self.step, {**{f"loss/{k}": v for k, v in means.items()},
                                                    "learning_rate": learning_rate, "steps_per_sec": speed,
                                                    "input_idle_fraction": idle})

    def _warn(self, message: str) -> None:
        if message not in self.history.warnings:
            self.history.warnings.append(message)
            log.warning("%s", message)

    def _report(self) -> TrainReport:
        speed, idle = _rates(self.timed)
        if self.no_gradient:
            names = sorted({n.rsplit(":", 1)[0] for n in self.no_gradient})
            self._warn(f"{len(names)} trainable variables get no gradient from the loss: {', '.join(names[:8])}")
        losses = self.history.losses
        return TrainReport(
            steps=self.step, start_step=self.start_step,
            final_losses={k: v[-1] for k, v in losses.items() if v},
            loss_history={k: tuple(v) for k, v in losses.items()}, learning_rates=tuple(self.history.learning_rates),
            metrics_history=tuple(self.history.evals), best_metric=self.monitor.best, stopped_early=self.stopped_early,
            stop_reason=self.stop_reason,
            restore=self.restore_report, resumed_from=self.resumed_from, checkpoint=self.state.latest(),
            input_idle_fraction=round(idle, 4), steps_per_sec=round(speed, 2),
            strategy=strategy_name(self.strategy), replicas=self.strategy.num_replicas_in_sync,
            mixed_precision=self.opts.mixed_precision, jit_compile=self.jit_compile,
            warnings=tuple(self.history.warnings))

    def close(self) -> None:
        self._release_batchnorm()
        self.summaries.close()
        if hasattr(self, "state"):
            self.state.close()


def _rates(acc: dict) -> tuple[float, float]:
    total = acc["waited"] + acc["busy"]
    return (acc["steps"] / total, acc["waited"] / total) if total > 0 else (0.0, 0.0)


def _inner(optimizer):
    """The optimizer under a LossScaleOptimizer (the optimizer itself otherwise)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _task_in_scope(task, strategy, mixed_precision):
    """The task, built now when given as a factory; checked to compute in the requested precision."""
    if not hasattr(task, "model") and callable(task):
        with precision_policy(mixed_precision):
            task = task()
    check_task(task)
    built = model_precision(task.model)
    if built != mixed_precision:
        raise EngineConfigError(
            f"mixed_precision={mixed_precision!r} but the task's model computes in {built or 'float32'}: the policy "
            f"applies when layers are built; pass a task factory, or build the task inside "
            f"`with finetune.engine.precision_policy({mixed_precision!r}):`")
    if strategy.num_replicas_in_sync > 1:
        outside = [variable_name(v) for v in task.model.variables if not strategy.extended.variable_created_in_scope(v)]
        if outside:
            raise EngineConfigError(f"{len(outside)} model variables (first: {outside[0]}) were created outside the "
                                    f"{strategy_name(strategy)} scope; pass a task factory so the engine builds the "
                                    "task inside it")
    return task

