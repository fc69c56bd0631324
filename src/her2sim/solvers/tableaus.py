"""Rosenbrock methods of the batch path as data (:func:`her2sim.solvers.batch.simulate_batch`).

Each method is a :class:`RosenbrockTableau` in the transformed (autonomous) form of Hairer &
Wanner; the integrator in :mod:`her2sim.solvers.batch` is generic in the tableau, so adding a method is
adding data here (and a convergence-order test).
"""

from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class RosenbrockTableau:
    """A Rosenbrock method in the transformed form of Hairer & Wanner (IV.7.25), autonomous:

    ``(I/(h*gamma) - J) u_i = f(y0 + sum_j a[i][j] u_j) + (1/h) sum_j c[i][j] u_j``,
    ``y1 = y0 + sum_i m[i] u_i``, error estimate ``sum_i e[i] u_i`` (= y1 - embedded solution).

    ``dense`` holds the coefficient rows of a Rodas-type continuous output
    ``y(t0 + s h) = (1-s) y0 + s (y1 + (1-s) (D1 + s (D2 + s D3 ...)))`` with
    ``Dk = sum_i dense[k][i] u_i`` (two rows for Rodas4: order 3; three for Rodas5P: order 4).
    """

    name: str
    order: int
    error_order: int
    gamma: float
    a: tuple
    c: tuple
    m: tuple
    e: tuple
    dense: tuple
    reference: str

    @property
    def stages(self) -> int:
        return len(self.m)

    def rhs_source(self, i: int) -> str:
        """Where stage i gets f: "y0" (its point is y0: reuse f(y0)), "previous" (same point as
        stage i-1) or "new" (evaluate)."""
        if i == 0 or not any(self.a[i]):
            return "y0"
        if i >= 2 and tuple(self.a[i]) == tuple(self.a[i - 1]) + (0.0,):
            return "previous"
        return "new"


_R4 = dict(  # noqa: C408 - the coefficient names of rodas.f
    a21=1.544, a31=0.9466785280815826, a32=0.2557011698983284, a41=3.314825187068521,
           a42=2.896124015972201, a43=0.9986419139977817, a51=1.221224509226641, a52=6.019134481288629,
           a53=12.53708332932087, a54=-0.687886036105895, c21=-5.6688, c31=-2.430093356833875,
           c32=-0.2063599157091915, c41=-0.1073529058151375, c42=-9.594562251023355,
           c43=-20.47028614809616, c51=7.496443313967647, c52=-10.24680431464352, c53=-33.99990352819905,
           c54=11.7089089320616, c61=8.083246795921522, c62=-7.981132988064893, c63=-31.52159432874371,
           c64=16.31930543123136, c65=-6.058818238834054, d21=10.12623508344586, d22=-7.487995877610167,
           d23=-34.80091861555747, d24=-7.992771707568823, d25=1.025137723295662,
           d31=-0.6762803392801253, d32=6.087714651680015, d33=16.43084320892478, d34=24.76722511418386,
           d35=-6.594389125716872)

RODAS4 = RosenbrockTableau(
    name="rodas4", order=4, error_order=3, gamma=0.25,
    a=((), (_R4["a21"],), (_R4["a31"], _R4["a32"]), (_R4["a41"], _R4["a42"], _R4["a43"]),
       (_R4["a51"], _R4["a52"], _R4["a53"], _R4["a54"]),
       (_R4["a51"], _R4["a52"], _R4["a53"], _R4["a54"], 1.0)),
    c=((), (_R4["c21"],), (_R4["c31"], _R4["c32"]), (_R4["c41"], _R4["c42"], _R4["c43"]),
       (_R4["c51"], _R4["c52"], _R4["c53"], _R4["c54"]),
       (_R4["c61"], _R4["c62"], _R4["c63"], _R4["c64"], _R4["c65"])),
    m=(_R4["a51"], _R4["a52"], _R4["a53"], _R4["a54"], 1.0, 1.0),
    e=(0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    dense=((_R4["d21"], _R4["d22"], _R4["d23"], _R4["d24"], _R4["d25"], 0.0),
           (_R4["d31"], _R4["d32"], _R4["d33"], _R4["d34"], _R4["d35"], 0.0)),
    reference="Hairer & Wanner, Solving ODEs II (1996), Sec. IV.7; rodas.f METH=1",
)

# Rodas5P: G. Steinebach, "Construction of Rosenbrock-Wanner method Rodas5P and numerical
# benchmarks within the Julia Differential Equations package", BIT Numer. Math. 63:27 (2023).
# Stages 7 and 8 sit at the previous stage's point plus its increment, so the method is stiffly
# accurate (y1 = stage-8 point + u8) and the error estimate is u8.
_R5P_A = ((), (3.0,), (2.849394379747939, 0.45842242204463923),
          (-6.954028509809101, 2.489845061869568, -10.358996098473584),
          (2.8029986275628964, 0.5072464736228206, -0.3988312541770524, -0.04721187230404641),
          (-7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256,
           0.030198172008377946))
_R5P_A = _R5P_A + (_R5P_A[5] + (1.0,), _R5P_A[5] + (1.0, 1.0))
RODAS5P = RosenbrockTableau(
    name="rodas5p", order=5, error_order=4, gamma=0.21193756319429014,
    a=_R5P_A,
    c=((), (-14.155112264123755,), (-17.97296035885952, -2.859693295451294),
       (147.12150275711716, -1.41221402718213, 71.68940251302358),
       (165.43517024871676, -0.4592823456491126, 42.90938336958603, -5.961986721573306),
       (24.854864614690072, -3.0009227002832186, 47.4931110020768, 5.5814197821558125, -0.6610691825249471),
       (30.91273214028599, -3.1208243349937974, 77.79954646070892, 34.28646028294783, -19.097331116725623,
        -28.087943162872662),
       (37.80277123390563, -3.2571969029072276, 112.26918849496327, 66.9347231244047, -40.06618937091002,
        -54.66780262877968, -9.48861652309627)),
    m=_R5P_A[7] + (1.0,),
    e=(0.0,) * 7 + (1.0,),
    dense=((25.948786856663858, -2.5579724845846235, 10.433815404888879, -2.3679251022685204,
            0.524948541321073, 1.1241088310450404, 0.4272876194431874, -0.17202221070155493),
           (-9.91568850695171, -0.9689944594115154, 3.0438037242978453, -24.495224566215796,
            20.176138334709044, 15.98066361424651, -6.789040303419874, -6.710236069923372),
           (11.419903575922262, 2.8879645146136994, 72.92137995996029, 80.12511834622643,
            -52.072871366152654, -59.78993625266729, -0.15582684282751913, 4.883087185713722)),
    reference="Steinebach, BIT Numer. Math. 63:27 (2023)",
)

#: the methods ``simulate_batch(method=...)`` accepts
TABLEAUS = {t.name: t for t in (RODAS4, RODAS5P)}


def auto_method(rtol: float) -> str:
    """The tableau ``method="auto"`` uses at this rtol. On the default HER2 model (B = 2000, same
    run, benchmarks/README.md) Rodas5P took 0.6-0.9x Rodas4's stage evaluations for rtol 1e-3..1e-7
    and had 1.3-3.7x smaller errors, so it is cheaper at equal error over that whole range; above
    rtol 1e-3 (not measured) Rodas4 is kept. Measured again with the C kernels (B = 1e4, one
    process, 2026-11-28, same run; cond per CPU-s, load 4-5; error against Radau 1e-10): rtol 1e-4:
    Rodas4 error 1.0e-4 at 11,071, Rodas5P 1.9e-5 at 11,655; rtol 2e-4: Rodas4 1.05e-4 at 12,809;
    rtol 1e-3: Rodas4 4.8e-4 at 15,884, Rodas5P 1.3e-4 at 13,274. At a given rtol Rodas5P costs about
    the same and is 3-5x more accurate; at equal error near 1e-4 the two are within the noise
    (12,809 vs 13,274), so Rodas5P stays the choice at rtol <= 1e-3.

    No lower-order method is offered for loose tolerances: on the HER2 time courses the accepted
    steps grow by a steady 1.3-1.5x per step from ~0.03 h to ~20 h (Rodas4, rtol 1e-4: 21 steps;
    Rodas5P: 16), i.e. the step count is set by the decades of time scales of the relaxation, each
    costing more steps the lower the order. The step is set by the embedded estimate (error ~ h^(q+1),
    q its order: 3 for Rodas4, 2 for an order-3 method), so at equal error constants an order-3 method
    of 4 stages needs about (1e4)^(1/3) / (1e4)^(1/4) = 2.2x Rodas4's steps at rtol 1e-4, for 4/6 of
    its stages per step: ~1.4x the work; the two tried (ROS3P, RODAS3; benchmarks/README.md) took
    2-3x the steps."""
    return "rodas5p" if rtol <= 1e-3 else "rodas4"
