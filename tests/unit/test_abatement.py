"""MAC curves: abatement at a price, cost integrals and marginal costs worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from carbonsim.market.abatement import (
    MACCurves,
    abatement_at_price,
    abatement_cost,
    abatement_potential,
    abatement_response,
    avoided_pollutants,
    marginal_cost,
)
from carbonsim.market.units import UnitTable


def units() -> UnitTable:
    """0: linear, E = 1 Mt, slope 1e-3 yuan/t per t, potential 20% = 200,000 t.
    1: steps, E = 2 Mt, (-20 yuan/t, 2%), (80, 5%), (300, 10%): 40,000 / 100,000 /
       200,000 t, cumulative 40,000 / 140,000 / 340,000 t.
    2: linear with no potential."""
    return UnitTable.create(
        ["steel", "cement", "generic"],
        product_t=[1e6, 2e6, 5e5],
        intensity_product=[1.0, 1.0, 1.0],
        mac_form=["linear", "steps", "linear"],
        mac_slope=[1e-3, 1.0, 1.0],
        mac_max_share=[0.2, 0.0, 0.0],
        mac_step_cost=[[0.0, 0.0, 0.0], [-20.0, 80.0, 300.0], [0.0, 0.0, 0.0]],
        mac_step_share=[[0.0, 0.0, 0.0], [0.02, 0.05, 0.10], [0.0, 0.0, 0.0]],
        pollutant_factors=[[0.12, 0.18, 0.025], [0.35, 0.5, 0.25], [1.0, 1.0, 1.0]],
    )


class TestAbatementAtPrice:
    @pytest.mark.parametrize(
        ("price", "expected"),
        [
            (-25.0, [0.0, 0.0, 0.0]),  # below every MAC
            (-10.0, [0.0, 40_000.0, 0.0]),  # the -20 yuan/t step pays even at a negative price
            (0.0, [0.0, 40_000.0, 0.0]),
            (50.0, [50_000.0, 40_000.0, 0.0]),  # 50 / 1e-3 = 50,000 t
            (79.99, [79_990.0, 40_000.0, 0.0]),
            (80.0, [80_000.0, 140_000.0, 0.0]),  # a step is taken at its own cost
            (500.0, [200_000.0, 340_000.0, 0.0]),  # linear capped at 20% of 1 Mt
        ],
    )
    def test_by_hand(self, price: float, expected: list[float]) -> None:
        np.testing.assert_allclose(abatement_at_price(price, units()), expected)

    @pytest.mark.parametrize("linear_only", [False, True])
    def test_response_equals_abatement_at_price(self, linear_only: bool) -> None:
        """The prepared curve gives the same bits as the one-shot function."""
        u = units()
        rng = np.random.default_rng(5)
        e = rng.uniform(1e5, 3e6, (4, 3))
        mac = MACCurves.from_units(u)
        if linear_only:
            u = UnitTable.create(
                ["steel", "cement", "generic"],
                product_t=[1e6, 2e6, 5e5],
                intensity_product=[1.0, 1.0, 1.0],
                mac_slope=[1e-3, 2e-3, 5e-4],
                mac_max_share=[0.2, 0.1, 0.3],
            )
            mac = MACCurves.from_units(u)
        respond = abatement_response(mac, emissions=e)
        for price in (rng.uniform(-30, 400, (4, 1)), rng.uniform(-30, 400, (4, 3))):
            np.testing.assert_array_equal(
                respond(price), abatement_at_price(price, mac, emissions=e)
            )

    @pytest.mark.parametrize("linear_only", [False, True])
    def test_response_broadcasts_price_against_shared_emissions(self, linear_only: bool) -> None:
        """Emissions the same in every replicate, (C, 1, N), against a price per curve and
        replicate, (C, R, 1), as the fundamental-price bisection calls it: the (C, R, N)
        result has the bits of the fully broadcast call, in a new array each call."""
        mac = MACCurves.from_units(units())
        if linear_only:
            mac = MACCurves(
                form=np.zeros(3, np.int8),
                slope=np.array([1e-3, 2e-3, 5e-4]),
                max_share=np.array([0.2, 0.1, 0.3]),
                step_cost=np.zeros((3, 0)),
                step_share=np.zeros((3, 0)),
            )
        rng = np.random.default_rng(7)
        e = rng.uniform(1e5, 3e6, (2, 1, 3))
        price = rng.uniform(-30, 400, (2, 5, 1))
        respond = abatement_response(mac, emissions=e)
        out = respond(price)
        full = np.broadcast_to(e, (2, 5, 3)).copy()
        np.testing.assert_array_equal(out, abatement_at_price(price, mac, emissions=full))
        assert out.shape == (2, 5, 3)
        again = respond(price + 1.0)
        assert not np.shares_memory(out, again)
        np.testing.assert_array_equal(out, abatement_at_price(price, mac, emissions=full))

    def test_potential(self) -> None:
        np.testing.assert_allclose(abatement_potential(units()), [200_000.0, 340_000.0, 0.0])

    def test_price_per_replicate_and_realized_emissions(self) -> None:
        e = np.array([[1e6, 2e6, 5e5], [5e5, 1e6, 5e5]])  # (R=2, N=3)
        out = abatement_at_price(np.array([[80.0], [300.0]]), units(), emissions=e)
        # replicate 1: linear capped at 20% of 0.5 Mt; steps all taken: 17% of 1 Mt
        np.testing.assert_allclose(out, [[80_000.0, 140_000.0, 0.0], [100_000.0, 170_000.0, 0.0]])

    def test_price_per_unit(self) -> None:
        out = abatement_at_price([10.0, 1000.0, 1000.0], units())
        np.testing.assert_allclose(out, [10_000.0, 340_000.0, 0.0])

    def test_non_broadcasting_price_explains(self) -> None:
        with pytest.raises(ValueError, match=r"price\[:, None\]"):
            abatement_at_price(np.array([1.0, 2.0]), units(), emissions=np.ones((2, 3)))


class TestCost:
    def test_linear_integral_by_hand(self) -> None:
        # 0.5 x 1e-3 x 50,000**2 = 1,250,000 yuan
        cost = abatement_cost([50_000.0, 0.0, 0.0], units())
        np.testing.assert_allclose(cost, [1_250_000.0, 0.0, 0.0])

    def test_step_integral_by_hand(self) -> None:
        # 100,000 t: 40,000 x -20 + 60,000 x 80 = -800,000 + 4,800,000 = 4,000,000 yuan
        # 340,000 t: -800,000 + 100,000 x 80 + 200,000 x 300 = 67,200,000 yuan
        q = np.array([[0.0, 100_000.0, 0.0], [0.0, 340_000.0, 0.0], [0.0, 20_000.0, 0.0]])
        np.testing.assert_allclose(
            abatement_cost(q, units())[:, 1], [4_000_000.0, 67_200_000.0, -400_000.0]
        )

    def test_cost_of_abatement_at_price_matches_integral(self) -> None:
        u = units()
        q = abatement_at_price(80.0, u)
        # linear: 0.5 x 1e-3 x 80,000**2 = 3.2e6; steps: -800,000 + 100,000 x 80 = 7.2e6
        np.testing.assert_allclose(abatement_cost(q, u), [3.2e6, 7.2e6, 0.0])

    def test_quantity_above_potential_raises_naming_unit(self) -> None:
        with pytest.raises(ValueError, match=r"quantity\[1\] = 340001.0 t exceeds.*unit 1"):
            abatement_cost([0.0, 340_001.0, 0.0], units())

    def test_rounding_above_potential_is_tolerated(self) -> None:
        cost = abatement_cost([200_000.0 * (1 + 1e-12), 0.0, 0.0], units())
        np.testing.assert_allclose(cost[0], 0.5 * 1e-3 * 200_000.0**2)

    def test_negative_quantity_raises(self) -> None:
        with pytest.raises(ValueError, match=r"quantity must be >= 0"):
            abatement_cost([-1.0, 0.0, 0.0], units())


class TestMarginalCost:
    def test_linear(self) -> None:
        np.testing.assert_allclose(marginal_cost([50_000.0, 0.0, 0.0], units())[0], 50.0)
        assert marginal_cost([0.0, 0.0, 0.0], units())[0] == 0.0

    @pytest.mark.parametrize(
        ("q", "expected"),
        [(0.0, -20.0), (40_000.0, -20.0), (40_001.0, 80.0), (140_000.0, 80.0), (340_000.0, 300.0)],
    )
    def test_steps(self, q: float, expected: float) -> None:
        assert marginal_cost([0.0, q, 0.0], units())[1] == expected

    def test_no_potential_first_tonne_never_abated(self) -> None:
        assert np.isinf(marginal_cost([0.0, 0.0, 0.0], units())[2])

    def test_inverse_of_abatement_at_price(self) -> None:
        u = units()
        for p in (10.0, 80.0, 150.0):
            q = abatement_at_price(p, u)
            mc = marginal_cost(q, u)
            assert mc[0] == pytest.approx(p)
            assert mc[1] <= p


class TestCurvesObject:
    def test_from_units_needs_emissions(self) -> None:
        mac = MACCurves.from_units(units())
        assert mac.n_units == 3
        with pytest.raises(TypeError, match=r"emissions .* is required"):
            abatement_at_price(10.0, mac)
        e = units().baseline_emissions()
        np.testing.assert_array_equal(
            abatement_at_price(10.0, mac, emissions=e), abatement_at_price(10.0, units())
        )

    def test_validation_names_field(self) -> None:
        with pytest.raises(ValueError, match=r"MACCurves\.mac_max_share must lie in \[0, 1\]"):
            MACCurves(
                form=np.array([0], dtype=np.int8),
                slope=np.array([1.0]),
                max_share=np.array([1.5]),
                step_cost=np.zeros((1, 0)),
                step_share=np.zeros((1, 0)),
            )

    def test_emissions_shape_checked(self) -> None:
        with pytest.raises(ValueError, match=r"emissions must have shape \(\.\.\., N\) with N = 3"):
            abatement_at_price(1.0, units(), emissions=[1.0, 2.0])


class TestPollutants:
    def test_by_hand(self) -> None:
        # 50,000 t x (0.12, 0.18, 0.025) kg/t = (6,000, 9,000, 1,250) kg
        # 100,000 t x (0.35, 0.5, 0.25) kg/t = (35,000, 50,000, 25,000) kg
        out = avoided_pollutants([50_000.0, 100_000.0, 0.0], units())
        np.testing.assert_allclose(
            out, [[6_000.0, 9_000.0, 1_250.0], [35_000.0, 50_000.0, 25_000.0], [0.0, 0.0, 0.0]]
        )

    def test_leading_axis(self) -> None:
        out = avoided_pollutants(np.ones((4, 3)), units().pollutant_factors)
        assert out.shape == (4, 3, 3)

    def test_bad_factor_shape(self) -> None:
        with pytest.raises(ValueError, match=r"factors must have shape \(N, 3\)"):
            avoided_pollutants([1.0], [[1.0, 2.0]])
