"""Marginal abatement cost (MAC) curves, vectorized over units and replicates.

Each unit has one of two MAC forms (:data:`carbonsim.market.units.MAC_FORMS`):

``"linear"``
    ``MAC(q) = slope * q`` (yuan/t, with ``q`` in t abated and ``slope`` in yuan/t per t),
    up to a potential of ``max_share * E`` tonnes, ``E`` the unit's emissions.
``"steps"``
    ``K`` technologies, each with a cost ``c_k`` (yuan/t, non-decreasing in ``k``, possibly
    negative for measures that pay for themselves) and a potential ``s_k * E`` tonnes.

Every function takes arrays with any leading axes, ``(..., N)``, and broadcasts them under
numpy rules against the ``N`` units, so the same call serves one replicate or ``R`` of
them. A price per replicate, shape ``(R,)``, is passed as ``price[:, None]``.

Definitions used throughout (``E`` = emissions, ``Q`` = potential):

- ``abatement_at_price(p)`` is the cost-minimising abatement at price ``p``: every tonne
  whose MAC is ``<= p``. Linear: ``min(max(p, 0) / slope, max_share * E)``. Steps: the
  sum of ``s_k * E`` over steps with ``c_k <= p``.
- ``abatement_cost(q)`` is the integral of the MAC from 0 to ``q`` (yuan): linear
  ``slope * q**2 / 2``; steps fill the cheapest steps first. It is convex in ``q``.
- ``marginal_cost(q)`` is the MAC of the ``q``-th tonne, ``inf{p : abatement_at_price(p)
  >= q}`` for ``q > 0``, and its limit ``q -> 0+`` at ``q = 0`` (0 for a linear curve, the
  first available step's cost for steps); a unit with no potential has ``inf`` at ``q = 0``.
- Quantities above the potential raise ``ValueError`` (the cost of the impossible is not a
  number a market model should silently use). A relative tolerance of ``1e-9`` absorbs
  rounding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from carbonsim._validation import as_float_array
from carbonsim.market.units import MAC_FORMS, POLLUTANTS, UnitTable, check_mac

log = logging.getLogger(__name__)

__all__ = [
    "MACCurves",
    "abatement_at_price",
    "abatement_cost",
    "abatement_potential",
    "abatement_response",
    "avoided_pollutants",
    "marginal_cost",
]

FloatArray = npt.NDArray[np.float64]

_LINEAR = MAC_FORMS.index("linear")
_REL_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class MACCurves:
    """MAC curves of ``N`` units, detached from a :class:`UnitTable`.

    Attributes
    ----------
    form : ndarray of int8, shape (N,)
        Codes into :data:`carbonsim.market.units.MAC_FORMS`.
    slope : ndarray of float64, shape (N,)
        Linear form: yuan/t per t abated, > 0.
    max_share : ndarray of float64, shape (N,)
        Linear form: potential as a share of emissions, in [0, 1].
    step_cost : ndarray of float64, shape (N, K)
        Step form: cost of each step, yuan/t, non-decreasing along ``K``.
    step_share : ndarray of float64, shape (N, K)
        Step form: potential of each step as a share of emissions; rows sum to <= 1.
    """

    form: npt.NDArray[np.int8]
    slope: FloatArray
    max_share: FloatArray
    step_cost: FloatArray
    step_share: FloatArray

    def __post_init__(self) -> None:
        form = np.asarray(self.form)
        n = form.shape[0] if form.ndim else 0
        checked: tuple[np.ndarray, ...] = check_mac(
            "MACCurves.",
            n,
            self.form,
            self.slope,
            self.max_share,
            self.step_cost,
            self.step_share,
        )
        for name, arr in zip(
            ("form", "slope", "max_share", "step_cost", "step_share"), checked, strict=True
        ):
            if arr.shape[0] != n:
                raise ValueError(f"MACCurves.{name} must have N = {n} rows, got {arr.shape[0]}")
            frozen = np.array(arr, copy=True)
            frozen.setflags(write=False)
            object.__setattr__(self, name, frozen)

    @classmethod
    def from_units(cls, units: UnitTable) -> MACCurves:
        """The MAC curves stored in ``units``."""
        return cls(
            form=units.mac_form,
            slope=units.mac_slope,
            max_share=units.mac_max_share,
            step_cost=units.mac_step_cost,
            step_share=units.mac_step_share,
        )

    @property
    def n_units(self) -> int:
        """Number of units ``N``."""
        return int(self.form.shape[0])


def _curves_and_emissions(
    curves: UnitTable | MACCurves, emissions: npt.ArrayLike | None
) -> tuple[MACCurves, FloatArray]:
    if isinstance(curves, UnitTable):
        mac = MACCurves.from_units(curves)
        e = curves.baseline_emissions() if emissions is None else emissions
    elif isinstance(curves, MACCurves):
        if emissions is None:
            raise TypeError("emissions (t, shape (..., N)) is required when curves is MACCurves")
        mac, e = curves, emissions
    else:
        raise TypeError(f"curves must be a UnitTable or MACCurves, got {type(curves).__name__}")
    e_arr = as_float_array("emissions", e, ndim=None, nonnegative=True)
    if e_arr.ndim == 0 or e_arr.shape[-1] != mac.n_units:
        raise ValueError(
            f"emissions must have shape (..., N) with N = {mac.n_units}, got {e_arr.shape}"
        )
    return mac, e_arr


def _broadcast(name: str, value: npt.ArrayLike, e: FloatArray, **checks: bool) -> FloatArray:
    arr = as_float_array(name, value, ndim=None, **checks)
    try:
        shape = np.broadcast_shapes(arr.shape, e.shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {arr.shape} does not broadcast against emissions of shape "
            f"{e.shape} (a value per replicate, shape (R,), is passed as {name}[:, None])"
        ) from None
    return np.broadcast_to(arr, shape)


def _step_potentials(mac: MACCurves, e: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-step potentials (..., N, K) in t and the cumulative potential after each step."""
    pot = e[..., None] * mac.step_share
    return pot, np.cumsum(pot, axis=-1)


def abatement_potential(
    curves: UnitTable | MACCurves, *, emissions: npt.ArrayLike | None = None
) -> FloatArray:
    """The most each unit can abate, t, shape ``(..., N)``.

    Linear: ``max_share * E``; steps: ``sum(step_share) * E``.

    Parameters
    ----------
    curves : UnitTable or MACCurves
        The ``N`` MAC curves.
    emissions : array_like, shape (..., N), optional
        Emissions the shares apply to, t. Defaults to the table's baseline emissions
        (required with :class:`MACCurves`).
    """
    mac, e = _curves_and_emissions(curves, emissions)
    linear = mac.max_share * e
    steps = mac.step_share.sum(axis=-1) * e
    return np.where(mac.form == _LINEAR, linear, steps)


def abatement_at_price(
    price: npt.ArrayLike,
    curves: UnitTable | MACCurves,
    *,
    emissions: npt.ArrayLike | None = None,
) -> FloatArray:
    """Tonnes abated by each unit at a carbon price: every tonne with MAC <= price.

    Parameters
    ----------
    price : array_like
        Price, yuan/t, broadcasting against ``(..., N)`` (scalar, ``(N,)``, ``(R, 1)``, ...).
    curves : UnitTable or MACCurves
        The ``N`` MAC curves.
    emissions : array_like, shape (..., N), optional
        Emissions the potentials apply to, t. Defaults to the table's baseline emissions.

    Returns
    -------
    ndarray of float64, shape broadcast(price, emissions)
        Abatement, t, in ``[0, abatement_potential]`` and non-decreasing in ``price``.

    Examples
    --------
    >>> u = UnitTable.create(["steel"], product_t=[1e6], intensity_product=[1.0],
    ...                      mac_slope=[1e-3], mac_max_share=[0.2])
    >>> abatement_at_price([[50.0], [500.0]], u).ravel().tolist()  # a price per replicate
    [50000.0, 200000.0]
    """
    mac, e = _curves_and_emissions(curves, emissions)
    return abatement_response(mac, emissions=e)(_broadcast("price", price, e))


def abatement_response(
    curves: UnitTable | MACCurves, *, emissions: npt.ArrayLike | None = None
) -> Callable[[FloatArray], FloatArray]:
    """:func:`abatement_at_price` as a function of the price alone, for repeated calls.

    The emissions are validated and the per-unit potentials computed once; each call then
    costs the comparisons with the price only (a bisection calls it dozens of times). The
    returned function gives exactly the numbers :func:`abatement_at_price` gives.

    Parameters
    ----------
    curves : UnitTable or MACCurves
        The ``N`` MAC curves.
    emissions : array_like, shape (..., N), optional
        Emissions the potentials apply to, t.

    Returns
    -------
    callable
        ``f(price)`` with ``price`` a float array broadcasting against ``(..., N)``,
        returning abatement in t.

    Examples
    --------
    >>> u = UnitTable.create(["steel"], product_t=[1e6], intensity_product=[1.0],
    ...                      mac_slope=[1e-3], mac_max_share=[0.2])
    >>> f = abatement_response(u)
    >>> f(np.array([[50.0], [500.0]])).ravel().tolist()
    [50000.0, 200000.0]
    """
    mac, e = _curves_and_emissions(curves, emissions)
    linear_cap = mac.max_share * e
    pot, _ = _step_potentials(mac, e)
    is_linear = mac.form == _LINEAR
    all_linear = bool(is_linear.all())

    def respond(price: FloatArray) -> FloatArray:
        # the price is used at its own shape (a price per replicate is (R, 1)) and
        # broadcast by the operations: one array of the result's shape is written, in
        # place, instead of a temporary per operation
        p = np.asarray(price, np.float64)
        linear = np.empty(np.broadcast_shapes(p.shape, e.shape))
        np.divide(np.maximum(p, 0.0), mac.slope, out=linear)
        np.minimum(linear, linear_cap, out=linear)
        if all_linear:  # np.where would pick every linear value
            return linear
        steps = np.sum(np.where(mac.step_cost <= p[..., None], pot, 0.0), axis=-1)
        return np.where(is_linear, linear, steps)

    return respond


def _check_quantity(q: FloatArray, potential: FloatArray) -> FloatArray:
    limit = potential * (1.0 + _REL_TOL) + _REL_TOL
    bad = q > limit
    if bad.any():
        idx = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), bad.shape)
        where = ", ".join(str(int(i)) for i in idx)
        raise ValueError(
            f"quantity[{where}] = {float(q[idx])!r} t exceeds the unit's abatement potential "
            f"{float(potential[idx])!r} t (unit {int(idx[-1])}); quantities must lie in "
            "[0, abatement_potential]"
        )
    return np.minimum(q, potential)


def abatement_cost(
    quantity: npt.ArrayLike,
    curves: UnitTable | MACCurves,
    *,
    emissions: npt.ArrayLike | None = None,
) -> FloatArray:
    """Total cost of abating ``quantity`` tonnes: the integral of the MAC, yuan.

    Linear: ``slope * q**2 / 2``. Steps: the cheapest steps are used first, so the cost is
    ``sum_k c_k * min(max(q - Q_{k-1}, 0), s_k * E)`` with ``Q_k`` the cumulative potential
    after step ``k`` (negative-cost steps give a negative total cost: savings).

    Parameters
    ----------
    quantity : array_like
        Abatement, t, broadcasting against ``(..., N)``; in ``[0, abatement_potential]``.
    curves : UnitTable or MACCurves
        The ``N`` MAC curves.
    emissions : array_like, shape (..., N), optional
        Emissions the potentials apply to, t. Defaults to the table's baseline emissions.

    Returns
    -------
    ndarray of float64
        Cost, yuan, convex and (where MAC >= 0) non-decreasing in ``quantity``.

    Raises
    ------
    ValueError
        If a quantity is negative or exceeds the unit's potential.
    """
    mac, e = _curves_and_emissions(curves, emissions)
    q = _broadcast("quantity", quantity, e, nonnegative=True)
    q = _check_quantity(q, np.broadcast_to(abatement_potential(mac, emissions=e), q.shape))
    linear = 0.5 * mac.slope * q**2
    pot, cum = _step_potentials(mac, e)
    before = cum - pot
    used = np.clip(q[..., None] - before, 0.0, pot)
    steps = np.sum(mac.step_cost * used, axis=-1)
    return np.where(mac.form == _LINEAR, linear, steps)


def marginal_cost(
    quantity: npt.ArrayLike,
    curves: UnitTable | MACCurves,
    *,
    emissions: npt.ArrayLike | None = None,
) -> FloatArray:
    """Marginal abatement cost of the ``quantity``-th tonne, yuan/t.

    Linear: ``slope * q``. Steps: the cost of the step that holds tonne ``q`` (the lowest
    price at which the unit abates at least ``q``). At ``q = 0`` this is the cost of the
    first tonne, ``inf`` for a unit without potential (see the module docstring).

    Parameters
    ----------
    quantity : array_like
        Abatement, t, broadcasting against ``(..., N)``; in ``[0, abatement_potential]``.
    curves : UnitTable or MACCurves
        The ``N`` MAC curves.
    emissions : array_like, shape (..., N), optional
        Emissions the potentials apply to, t. Defaults to the table's baseline emissions.

    Returns
    -------
    ndarray of float64
        Marginal cost, yuan/t, non-decreasing in ``quantity``.
    """
    mac, e = _curves_and_emissions(curves, emissions)
    q = _broadcast("quantity", quantity, e, nonnegative=True)
    potential = np.broadcast_to(abatement_potential(mac, emissions=e), q.shape)
    q = _check_quantity(q, potential)
    none = potential <= 0.0
    linear = np.where(none, np.inf, mac.slope * q)
    pot, cum = _step_potentials(mac, e)
    k = pot.shape[-1]
    if k == 0:
        steps = np.full(q.shape, np.inf)
    else:
        tol = _REL_TOL * np.maximum(cum[..., -1:], 1.0)
        holds = (pot > 0.0) & (cum >= q[..., None] - tol)
        first = np.argmax(holds, axis=-1)
        cost = np.broadcast_to(mac.step_cost, holds.shape)
        steps = np.take_along_axis(cost, first[..., None], axis=-1)[..., 0]
        steps = np.where(holds.any(axis=-1), steps, np.inf)
    return np.where(mac.form == _LINEAR, linear, steps)


def avoided_pollutants(abated: npt.ArrayLike, factors: UnitTable | npt.ArrayLike) -> FloatArray:
    """Co-pollutants avoided by abatement, kg, shape ``(..., N, 3)``.

    ``abated[..., i] * factors[i, j]`` for pollutant ``j`` in
    :data:`carbonsim.market.units.POLLUTANTS` (SO2, NOx, PM): the synergy of carbon and
    pollution reduction that the source documents stress (``DESIGN.md``, "Co-benefits").

    Parameters
    ----------
    abated : array_like, shape (..., N)
        Abatement, t CO2, >= 0.
    factors : UnitTable or array_like, shape (N, 3)
        Co-pollutant factors, kg per t CO2 (``UnitTable.pollutant_factors``).
    """
    f = factors.pollutant_factors if isinstance(factors, UnitTable) else factors
    f_arr = as_float_array("factors", f, ndim=2, nonnegative=True)
    if f_arr.shape[1] != len(POLLUTANTS):
        raise ValueError(
            f"factors must have shape (N, 3) for {', '.join(POLLUTANTS)}, got {f_arr.shape}"
        )
    a = as_float_array("abated", abated, ndim=None, nonnegative=True)
    if a.ndim == 0 or a.shape[-1] != f_arr.shape[0]:
        raise ValueError(
            f"abated must have shape (..., N) with N = {f_arr.shape[0]}, got {a.shape}"
        )
    return a[..., None] * f_arr
