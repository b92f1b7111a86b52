"""Fit behaviour parameters to calibration targets by the method of simulated moments.

The parameters that no source gives (trading propensities, deadline urgency, expectation
weights, discount rates) are chosen so that the simulated moments of a scenario reproduce
its targets (:mod:`carbonsim.calibration.moments`). :func:`fit` minimises

.. math::

    J(z) = \\sum_k w_k\\, L_k\\bigl(m_k(x(z)) / v_k - 1\\bigr)
           + \\lambda \\lVert z - z_0 \\rVert^2

over the parameters ``x`` (dotted override paths of the scenario, each within bounds),
where ``m_k`` is the simulated moment of target ``k``, ``v_k`` its value and ``w_k`` its
weight, and the loss of a relative error ``e`` depends on how the source states the figure:

``approx``
    ``L = e^2``;
``at_least``
    ``L = min(e, 0)^2 + p e^2``: a shortfall below the bound counts fully; the small pull
    ``p`` (default 0.1) keeps the fit near the bound, because a figure reported as "above
    460 Mt" is a rounded-down count (without it every volume above the bound would fit
    equally well, and the price level would not be identified);
``at_most``
    ``L = max(e, 0)^2 + p e^2``.

**Bounds by transformation.** The optimiser works in an unbounded space: each parameter
``x`` in ``[lower, upper]`` is mapped to ``u`` in ``[0, 1]`` (on a log scale when
``lower > 0``, else linearly) and to ``z = logit(u)``. Every ``z`` maps back inside the
bounds, so a derivative-free method (Nelder-Mead by default) needs no constraints.

**Regularisation.** The term ``lambda ||z - z_0||^2`` (``prior_weight``, default 1e-5)
pulls the parameters toward where the fit started, the priors written in the scenario file.
With more parameters than targets the moments alone leave a valley of equally good fits;
the pull picks the one closest to the priors. It is a tie-breaker only: a distance of 1 in
``z`` costs as much as a relative error of 0.3% in one target.

**Common random numbers.** Every evaluation simulates the same seed and replicates, so the
random draws are the same in every evaluation and the objective changes with the
parameters only (the engine draws from counter-based per-replicate streams, masked where
fewer units act). The fitted values are rounded to ``digits`` significant digits and the
scenario is simulated once more at the rounded values: the moments reported are those of
the values that are written, so the calibrated scenario reproduces them exactly for the
same seed.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbonsim._validation import check_in_range
from carbonsim._version import __version__
from carbonsim.calibration.moments import compare, simulated_moments
from carbonsim.calibration.moments import targets as targets_of
from carbonsim.scenario.loader import load_scenario, scenario_from_dict, with_overrides
from carbonsim.scenario.schema import CalibrationSpec, Scenario

log = logging.getLogger(__name__)

__all__ = ["METHODS", "FitResult", "ParameterSpace", "current_value", "fit", "target_loss"]

FloatArray = npt.NDArray[np.float64]

#: Derivative-free scipy.optimize.minimize methods :func:`fit` accepts (a simulation has no
#: useful gradient).
METHODS: tuple[str, ...] = ("Nelder-Mead", "Powell", "COBYLA")

#: Loss of a target whose simulated moment is not finite.
_NONFINITE_LOSS = 1e6
#: Start values are kept this far (in u) from the bounds, where the logit is flat.
_START_MARGIN = 0.02
_U_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class ParameterSpace:
    """Bounded parameters and their map to the optimiser's unbounded space.

    ``x`` in ``[lower, upper]`` maps to ``u = (log x - log lower) / (log upper - log
    lower)`` when ``lower > 0`` (``log_scale``), else ``u = (x - lower) / (upper - lower)``,
    and to ``z = log(u / (1 - u))``.

    Parameters
    ----------
    paths : tuple of str
        Dotted override paths (:func:`carbonsim.scenario.with_overrides`), length ``P``.
    lower, upper : numpy.ndarray
        Bounds, shape ``(P,)``, ``lower < upper``.
    log_scale : numpy.ndarray of bool
        Which parameters are transformed on the log scale, shape ``(P,)``.

    Examples
    --------
    >>> space = ParameterSpace.from_bounds({"a": (0.001, 0.1), "b": (0.0, 1.0)})
    >>> [round(float(v), 6) for v in space.to_internal([0.01, 0.5])]
    [0.0, 0.0]
    >>> [round(float(v), 6) for v in space.to_external([0.0, 0.0])]
    [0.01, 0.5]
    """

    paths: tuple[str, ...]
    lower: FloatArray
    upper: FloatArray
    log_scale: npt.NDArray[np.bool_]

    @classmethod
    def from_bounds(cls, parameters: Mapping[str, Sequence[float]]) -> ParameterSpace:
        """Build from ``{path: (lower, upper)}``; log scale where ``lower > 0``."""
        if not isinstance(parameters, Mapping) or not parameters:
            raise ValueError(
                "parameters must map at least one dotted path to (lower, upper) bounds, "
                f"got {parameters!r}"
            )
        lower, upper = [], []
        for path, bounds in parameters.items():
            if not isinstance(path, str) or not path:
                raise TypeError(f"parameter paths must be non-empty strings, got {path!r}")
            if isinstance(bounds, (str, bytes)) or len(bounds) != 2:
                raise ValueError(f"parameters[{path!r}] must be (lower, upper), got {bounds!r}")
            lo = check_in_range(f"parameters[{path!r}] lower bound", bounds[0])
            hi = check_in_range(f"parameters[{path!r}] upper bound", bounds[1])
            if not lo < hi:
                raise ValueError(f"parameters[{path!r}]: lower must be below upper, got {bounds}")
            lower.append(lo)
            upper.append(hi)
        lo_a, hi_a = np.array(lower), np.array(upper)
        return cls(tuple(parameters), lo_a, hi_a, lo_a > 0)

    @property
    def size(self) -> int:
        """Number of parameters ``P``."""
        return len(self.paths)

    def bounds(self) -> dict[str, tuple[float, float]]:
        """``{path: (lower, upper)}``."""
        return {
            p: (float(lo), float(hi))
            for p, lo, hi in zip(self.paths, self.lower, self.upper, strict=True)
        }

    def _log_safe(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """log of ``x``, lower and upper where log-scaled (0, 0, 1 elsewhere)."""
        one = np.ones_like(self.lower)
        return (
            np.log(np.where(self.log_scale, x, one)),
            np.log(np.where(self.log_scale, self.lower, one)),
            np.log(np.where(self.log_scale, self.upper, math.e * one)),
        )

    def to_unit(self, x: Sequence[float] | FloatArray) -> FloatArray:
        """``u`` in [0, 1] of values ``x``, shape ``(P,)``; values outside are clipped."""
        x = np.clip(np.asarray(x, np.float64), self.lower, self.upper)
        log_x, log_lo, log_hi = self._log_safe(x)
        log_u = (log_x - log_lo) / (log_hi - log_lo)
        lin_u = (x - self.lower) / (self.upper - self.lower)
        return np.where(self.log_scale, log_u, lin_u)

    def to_internal(self, x: Sequence[float] | FloatArray, margin: float = _U_EPS) -> FloatArray:
        """``z = logit(u)``; ``u`` is kept ``margin`` away from 0 and 1."""
        u = np.clip(self.to_unit(x), margin, 1.0 - margin)
        return np.log(u) - np.log1p(-u)

    def to_external(self, z: Sequence[float] | FloatArray) -> FloatArray:
        """Values ``x`` of internal coordinates ``z``, always within the bounds."""
        u = 1.0 / (1.0 + np.exp(-np.clip(np.asarray(z, np.float64), -50.0, 50.0)))
        _, log_lo, log_hi = self._log_safe(self.lower)
        on_log = np.exp(log_lo + u * (log_hi - log_lo))
        x = np.where(self.log_scale, on_log, self.lower + u * (self.upper - self.lower))
        return np.clip(x, self.lower, self.upper)


def target_loss(
    rel_error: Sequence[float] | FloatArray,
    kind: Sequence[str] | npt.NDArray[np.str_],
    *,
    weight: float | Sequence[float] | FloatArray = 1.0,
    pull: float = 0.1,
) -> FloatArray:
    """Loss of each target's relative error ``e = simulated / value - 1``.

    ``approx``: ``e^2``; ``at_least``: ``min(e, 0)^2 + pull e^2``; ``at_most``:
    ``max(e, 0)^2 + pull e^2``; times the target's weight. A non-finite error costs 1e6.

    >>> target_loss([0.1, -0.1, 0.1], ["approx", "at_least", "at_least"], pull=0.1).round(6)
    array([0.01 , 0.011, 0.001])
    """
    e = np.asarray(rel_error, np.float64)
    k = np.asarray(kind, dtype=str)
    unknown = sorted(set(k.tolist()) - {"approx", "at_least", "at_most"})
    if unknown:
        raise ValueError(f"unknown target kind(s) {unknown}; valid: approx, at_least, at_most")
    pull = check_in_range("pull", pull, 0.0)
    finite = np.isfinite(e)
    e0 = np.where(finite, e, 0.0)
    one_sided = np.where(k == "at_least", np.minimum(e0, 0.0), np.maximum(e0, 0.0)) ** 2
    loss = np.where(k == "approx", e0**2, one_sided + pull * e0**2)
    loss = np.where(finite, loss, _NONFINITE_LOSS)
    return np.asarray(weight, np.float64) * loss


def _get_path(data: Any, parts: list[str]) -> Any:
    for p in parts:
        data = data[int(p)] if isinstance(data, list) else data[p]
    return data


def current_value(scenario: Scenario, path: str) -> float:
    """The value of a numeric field at a dotted path (a strategy's default if not set).

    >>> sc = load_scenario("china-national-tiny")
    >>> current_value(sc, "behaviour.expectation_weight")
    0.05
    >>> current_value(sc, "behaviour.strategies.0.params.price_weight")  # the default
    0.7
    """
    data = scenario.model_dump(mode="json")
    parts = path.split(".")
    try:
        value = _get_path(data, parts)
    except (KeyError, IndexError, ValueError, TypeError):
        value = None
        if len(parts) == 5 and parts[:2] == ["behaviour", "strategies"] and parts[3] == "params":
            from carbonsim.agents.base import make_strategy

            try:
                spec = scenario.behaviour.strategies[int(parts[2])]
                value = getattr(make_strategy(spec.name, spec.params), parts[4], None)
            except (IndexError, ValueError):
                value = None
        if value is None:
            raise ValueError(
                f"{path!r} is not a field of scenario {scenario.name!r} (give start=)"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path!r} is not a number in scenario {scenario.name!r}: {value!r}")
    return float(value)


def _round(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


@dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes
    ----------
    scenario : Scenario
        The scenario the fit started from (its values at ``parameters`` are ``start``).
    targets : pandas.DataFrame
        The targets fitted (:func:`carbonsim.calibration.targets`).
    parameters : dict
        ``{path: (lower, upper)}``.
    start, fitted : dict
        ``{path: value}`` where the fit started and what it found (rounded to ``digits``
        significant digits).
    objective : float
        The objective at ``fitted`` (dimensionless, see the module docstring).
    moments : pandas.DataFrame
        Simulated moments at ``fitted`` against the targets (the table of
        :func:`carbonsim.calibration.compare`).
    history : pandas.DataFrame
        One row per simulation, index ``evaluation``: parameter values, simulated moments,
        ``loss`` (targets), ``penalty`` (regularisation) and ``objective``.
    evaluations : int
        Number of simulations run.
    elapsed : float
        Wall-clock time of the fit, s.
    seed, replicates : int
        The common random numbers of every evaluation.
    method : str
        scipy.optimize.minimize method.
    options : dict
        ``maxiter``, ``prior_weight``, ``pull``, ``digits`` and the method's tolerances.
    optimizer : dict
        scipy's summary: ``success``, ``status``, ``message``, ``nit``, ``nfev``, ``fun``.
    """

    scenario: Scenario
    targets: pd.DataFrame
    parameters: dict[str, tuple[float, float]]
    start: dict[str, float]
    fitted: dict[str, float]
    objective: float
    moments: pd.DataFrame
    history: pd.DataFrame
    evaluations: int
    elapsed: float
    seed: int
    replicates: int
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every target passes at the fitted values."""
        return bool(self.moments["passed"].all())

    def calibration(self, command: str = "", *, date: dt.date | None = None) -> CalibrationSpec:
        """The ``[calibration]`` table recording this fit.

        Parameters
        ----------
        command : str
            The command that reruns the fit (stored as provenance).
        date : datetime.date, optional
            Date of the fit; default today.
        """
        moments: dict[str, dict[str, Any]] = {}
        for name, row in self.moments.iterrows():
            moments[str(name)] = {
                "metric": str(row["metric"]),
                "date": pd.Timestamp(row["date"]).date().isoformat(),
                "kind": str(row["kind"]),
                "target": float(row["value"]),
                "simulated": float(row["simulated"]),
                "unit": str(row["unit"]),
                "rel_error": round(float(row["rel_error"]), 6),
                "tolerance": float(row["tolerance"]),
                "passed": bool(row["passed"]),
                "source": str(row["source"]),
            }
        provenance: dict[str, Any] = {
            "command": command,
            "date": (date or dt.date.today()).isoformat(),
            "carbonsim_version": __version__,
            "targets": str(self.targets.attrs.get("source", "")),
            "seed": self.seed,
            "replicates": self.replicates,
            "method": self.method,
            "evaluations": self.evaluations,
            "elapsed_s": round(self.elapsed, 1),
            "converged": bool(self.optimizer.get("success", False)),
            "objective": float(f"{self.objective:.6g}"),
            "options": {k: v for k, v in self.options.items() if v is not None},
            "start": dict(self.start),
            "moments": moments,
        }
        return CalibrationSpec(
            parameters={p: [lo, hi] for p, (lo, hi) in self.parameters.items()},
            fitted=dict(self.fitted),
            provenance=provenance,
        )

    def calibrated_scenario(self, command: str = "") -> Scenario:
        """The starting scenario with the fitted values applied and the fit recorded."""
        data = self.scenario.model_dump(mode="json")
        data["calibration"] = self.calibration(command).model_dump(mode="json")
        return scenario_from_dict(data, f"{self.scenario.name} (calibrated)")

    def summary(self) -> str:
        """A short text report: parameters (start -> fitted) and moments against targets."""
        from carbonsim._format import format_number, format_table

        lines = [
            f"fit of {self.scenario.name!r}: {self.evaluations} simulations in "
            f"{self.elapsed:.0f} s ({self.method}, seed {self.seed}, {self.replicates} "
            f"replicate(s)), objective {self.objective:.4g}"
        ]
        rows = [
            [p, f"{self.start[p]:.4g}", f"{self.fitted[p]:.4g}", f"[{lo:g}, {hi:g}]"]
            for p, (lo, hi) in self.parameters.items()
        ]
        lines.append(format_table(["parameter", "start", "fitted", "bounds"], rows))
        rows = []
        for name, row in self.moments.iterrows():
            unit = str(row["unit"])
            rows.append(
                [
                    str(name),
                    str(pd.Timestamp(row["date"]).date()),
                    str(row["kind"]),
                    format_number(float(row["value"]), unit),
                    format_number(float(row["simulated"]), unit),
                    f"{100 * float(row['rel_error']):+.1f}%",
                    f"{100 * float(row['tolerance']):.0f}%",
                    "pass" if row["passed"] else "FAIL",
                ]
            )
        lines.append(
            format_table(
                ["target", "date", "kind", "target value", "simulated", "error", "tol", ""],
                rows,
                align="llllrrrl",
            )
        )
        return "\n\n".join(lines)


def fit(
    scenario: Scenario | str | Path,
    parameters: Mapping[str, Sequence[float]] | None = None,
    *,
    targets: pd.DataFrame | None = None,
    seed: int = 0,
    replicates: int = 1,
    maxiter: int = 100,
    method: str = "Nelder-Mead",
    start: Mapping[str, float] | None = None,
    prior_weight: float = 1e-5,
    pull: float = 0.1,
    initial_step: float = 0.5,
    xatol: float = 0.01,
    fatol: float = 1e-5,
    digits: int = 4,
    progress: bool = False,
) -> FitResult:
    """Fit behaviour parameters to a scenario's targets (method of simulated moments).

    Parameters
    ----------
    scenario : Scenario, str or path-like
        The scenario to fit. A name or path is loaded with ``calibrated=False``: the fit
        starts from the priors written in the file, not from an earlier calibration. A
        :class:`~carbonsim.scenario.Scenario` is used as given.
    parameters : mapping, optional
        ``{dotted path: (lower, upper)}`` of the parameters to fit; default the scenario's
        ``calibration.parameters``.
    targets : pandas.DataFrame, optional
        Targets to fit; default :func:`carbonsim.calibration.targets` of the scenario.
    seed : int
        Root seed of every evaluation (common random numbers).
    replicates : int
        Replicates per evaluation; the moments are their means.
    maxiter : int
        Iteration limit of the optimiser (Nelder-Mead: about 1-2 simulations each).
    method : str
        One of :data:`METHODS`.
    start : mapping, optional
        ``{path: value}`` to start from; default the scenario's current values.
    prior_weight : float
        Weight ``lambda`` of the pull toward the start, >= 0 (module docstring).
    pull : float
        Weight ``p`` of the pull of one-sided targets toward their bound, >= 0.
    initial_step : float
        Size of the first simplex (Nelder-Mead) or trust region (COBYLA) in ``z`` units.
    xatol, fatol : float
        Convergence tolerances in ``z`` and in the objective.
    digits : int
        Significant digits of the fitted values (they are written to scenario files).
    progress : bool
        Show a tqdm progress bar over simulations.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        No parameters or targets, a bad option, or a scenario window that does not reach a
        target's date.

    Examples
    --------
    Recover a known parameter of the tiny scenario from its own simulated volume:

    >>> import carbonsim as cs
    >>> from carbonsim.calibration import target_table
    >>> path = "behaviour.strategies.1.params.activity"
    >>> sc = cs.load_scenario("china-national-tiny")
    >>> true = cs.simulate(cs.with_overrides(sc, {path: 0.02}), seed=0)
    >>> vol = float(true.summary()["mean"]["cumulative_volume"])
    >>> t = target_table([{"target": "cumulative_volume", "value": vol, "unit": "t",
    ...                    "date": "2021-12-31", "kind": "approx", "tolerance": 0.05,
    ...                    "source": "doctest"}])
    >>> res = fit(sc, {path: (0.001, 0.1)}, targets=t, maxiter=6, prior_weight=0.0)
    >>> res.passed
    True
    """
    from scipy import optimize

    from carbonsim.engine.simulation import simulate

    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    for name, value in (("seed", seed), ("replicates", replicates), ("maxiter", maxiter)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if seed < 0 or replicates < 1 or maxiter < 1:
        raise ValueError(
            f"need seed >= 0, replicates >= 1 and maxiter >= 1, got {seed}, {replicates}, {maxiter}"
        )
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 17:
        raise ValueError(f"digits must be an int in [1, 17], got {digits!r}")
    prior_weight = check_in_range("prior_weight", prior_weight, 0.0)
    pull = check_in_range("pull", pull, 0.0)
    initial_step = check_in_range("initial_step", initial_step, 1e-6)

    base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario, calibrated=False)
    if parameters is None:
        parameters = {p: tuple(b) for p, b in base.calibration.parameters.items()}
        if not parameters:
            raise ValueError(
                f"scenario {base.name!r} declares no parameters to fit "
                "([calibration.parameters] is empty); pass parameters={path: (lower, upper)}"
            )
    space = ParameterSpace.from_bounds(parameters)
    table = targets if targets is not None else targets_of(base.name)
    if table.empty:
        raise ValueError("no targets to fit")
    last = pd.Timestamp(max(table["date"]))
    first = pd.Timestamp(min(table["date"]))
    if last > pd.Timestamp(base.time.end) or first < pd.Timestamp(base.time.start):
        raise ValueError(
            f"scenario {base.name!r} runs {base.time.start} to {base.time.end}; the targets "
            f"refer to {first.date()} .. {last.date()}"
        )
    start_values = {p: current_value(base, p) for p in space.paths}
    if start is not None:
        unknown = sorted(set(start) - set(space.paths))
        if unknown:
            raise ValueError(f"start names parameters not fitted: {unknown}")
        start_values.update({p: float(v) for p, v in start.items()})
    x_start = np.array([start_values[p] for p in space.paths])
    z0 = space.to_internal(x_start, margin=_START_MARGIN)

    rows: list[dict[str, Any]] = []
    cache: dict[tuple[float, ...], float] = {}
    bar: Any = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc=f"calibrating {base.name}", unit="sim")

    def simulate_at(x: FloatArray) -> pd.Series:
        sc = with_overrides(base, dict(zip(space.paths, x.tolist(), strict=True)))
        return simulated_moments(simulate(sc, seed=seed, replicates=replicates), table)

    def score(z: FloatArray, x: FloatArray) -> float:
        sim = simulate_at(x)
        cmp = compare(sim, table)
        loss = float(
            target_loss(
                cmp["rel_error"].to_numpy(float),
                cmp["kind"].to_numpy(str),
                weight=table["weight"].to_numpy(float),
                pull=pull,
            ).sum()
        )
        penalty = prior_weight * float(np.sum((z - z0) ** 2))
        total = loss + penalty
        row: dict[str, Any] = dict(zip(space.paths, x.tolist(), strict=True))
        row.update({f"simulated:{k}": float(v) for k, v in sim.items()})
        row.update({"loss": loss, "penalty": penalty, "objective": total})
        rows.append(row)
        log.info(
            "simulation %d: %s -> objective %.6g",
            len(rows),
            ", ".join(f"{p}={v:.5g}" for p, v in zip(space.paths, x, strict=True)),
            total,
        )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{total:.3g}")
        return total

    def objective(z: FloatArray) -> float:
        z = np.asarray(z, np.float64)
        key = tuple(z.tolist())
        if key not in cache:
            cache[key] = score(z, space.to_external(z))
        return cache[key]

    options: dict[str, Any] = {"maxiter": int(maxiter)}
    if method == "Nelder-Mead":
        simplex = np.vstack([z0, z0 + initial_step * np.eye(space.size)])
        options.update(xatol=xatol, fatol=fatol, initial_simplex=simplex)
    elif method == "Powell":
        options.update(xtol=xatol, ftol=fatol)
    else:  # COBYLA
        options.update(rhobeg=initial_step, tol=xatol)
    t0 = time.perf_counter()
    try:
        res = optimize.minimize(objective, z0, method=method, options=options)
        # the best point simulated (scipy reports it too; the history is the record)
        best = int(np.argmin([r["objective"] for r in rows]))
        x_best = np.array([rows[best][p] for p in space.paths])
        fitted = np.clip([_round(v, digits) for v in x_best], space.lower, space.upper)
        if np.array_equal(fitted, x_best):
            final = rows[best]
        else:  # simulate the values that are written, so their moments are the ones reported
            score(space.to_internal(fitted), fitted)
            final = rows[-1]
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    objective_fit = float(final["objective"])
    moments_fit = compare(
        pd.Series({k.split(":", 1)[1]: v for k, v in final.items() if k.startswith("simulated:")}),
        table,
    )
    history = pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="evaluation"))
    summary = {
        "success": bool(res.success),
        "status": int(res.status),
        "message": str(res.message),
        "nit": int(getattr(res, "nit", 0) or 0),
        "nfev": int(res.nfev),
        "fun": float(res.fun),
    }
    log.info(
        "fit of %s: %d simulations in %.0f s, objective %.4g (%s)",
        base.name,
        len(rows),
        elapsed,
        objective_fit,
        summary["message"],
    )
    fitted_dict = dict(zip(space.paths, [float(v) for v in fitted], strict=True))
    return FitResult(
        scenario=base,
        targets=table,
        parameters=space.bounds(),
        start=dict(zip(space.paths, [float(v) for v in x_start], strict=True)),
        fitted=fitted_dict,
        objective=float(objective_fit),
        moments=moments_fit,
        history=history,
        evaluations=len(rows),
        elapsed=elapsed,
        seed=int(seed),
        replicates=int(replicates),
        method=method,
        options={
            "maxiter": int(maxiter),
            "prior_weight": prior_weight,
            "pull": pull,
            "initial_step": initial_step,
            "xatol": xatol,
            "fatol": fatol if method != "COBYLA" else None,
            "digits": digits,
        },
        optimizer=summary,
    )
