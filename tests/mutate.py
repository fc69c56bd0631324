"""Deliberate breakages (issue 10 item 6) and the tests that must catch them.

Each mutation replaces one exact piece of text in a source or model file, runs the tests named
for it and restores the file (also on Ctrl-C). A mutation is *caught* when pytest fails.

    PYTHONPATH=$PWD/src python tests/mutate.py                 # list the mutations
    PYTHONPATH=$PWD/src python tests/mutate.py block_washout   # run one (or several, or "all")
    PYTHONPATH=$PWD/src python tests/mutate.py all --files     # run each against its whole test files
    PYTHONPATH=$PWD/src python tests/mutate.py NAME --files -- -k "not new_test"   # extra pytest arguments

The table of results is ``tests/MUTATIONS.md``. Not collected by pytest (the name has no test_ prefix).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str      # relative to the repository root
    old: str       # exact text, must occur once
    new: str
    tests: tuple   # pytest node ids that must fail
    files: tuple = ()  # the relevant test files (for --files); default: the files of ``tests``


MUTATIONS = [
    Mutation("block_washout", "block mode ignores a dose event (doses of t = 0 for every segment)",
             "src/her2sim/solvers/scipy_engine.py",
             "Pd = np.array([dosed(network, P[i], dict(doses_at(c, t0))) for i, c in enumerate(conds)])",
             "Pd = np.array([dosed(network, P[i], dict(doses_at(c, 0.0))) for i, c in enumerate(conds)])",
             ("tests/test_experiments.py::test_washout_events_are_honoured_by_every_engine_and_mode",),
             ("tests/test_experiments.py", "tests/test_solve.py")),
    Mutation("screen_first_control", "every background normalised by the first background's untreated control",
             "src/her2sim/screen/screen.py",
             'fu = data["readout"] / data["readout"][control].reshape((-1,) + (1,) * len(axes))',
             'fu = data["readout"] / data["readout"][(0,) + (0,) * len(axes)]',
             ("tests/test_experiments.py::test_each_background_is_normalised_by_its_own_untreated_control",),
             ("tests/test_experiments.py", "tests/test_screen.py")),
    Mutation("screen_gr_first_control", "GR of every background against the first background's control",
             "src/her2sim/screen/screen.py",
             "xc, x0 = cells[b].flat[0], cells_t0[b].flat[0]",
             "xc, x0 = cells[0].flat[0], cells_t0[0].flat[0]",
             ("tests/test_screen.py::test_gr_is_one_without_drug_and_falls_with_lapatinib",),
             ("tests/test_screen.py",)),
    Mutation("sweep_relative_absolute", "relative sweep parameters used as absolute values",
             "src/her2sim/sweep/sweep.py",
             "scale = {name: (net.p0[net.parameter_index(name)] if name in spec.relative else 1.0) for name in param_names}",
             "scale = {name: 1.0 for name in param_names}",
             ("tests/test_experiments.py::test_relative_sweep_parameters_scale_the_nominal_value",),
             ("tests/test_experiments.py", "tests/test_sweep.py")),
    Mutation("mean_over_t1", "windowed mean: divides the area by T1 instead of T1 - T0",
             "src/her2sim/experiments/readouts.py",
             'return area if kind == "auc" else area / (t1 - t0)',
             'return area if kind == "auc" else area / t1',
             ("tests/test_experiments.py::test_windowed_mean_and_auc_match_the_closed_form",),
             ("tests/test_experiments.py", "tests/test_screen.py")),
    Mutation("hsa3_two_drugs", "three-drug HSA: expected = the stronger of the first two drugs only",
             "src/her2sim/screen/screen.py",
             "exp_ = np.maximum.reduce(np.broadcast_arrays(*singles))",
             "exp_ = np.maximum(*np.broadcast_arrays(*singles)[:2])",
             ("tests/test_screen.py::test_three_drug_hsa_expects_the_strongest_single_agent",),
             ("tests/test_screen.py",)),
    Mutation("hsa3_mean", "three-drug HSA: expected = the mean of the single agents",
             "src/her2sim/screen/screen.py",
             "exp_ = np.maximum.reduce(np.broadcast_arrays(*singles))",
             "exp_ = np.mean(np.broadcast_arrays(*singles), axis=0)",
             ("tests/test_screen.py::test_three_drug_hsa_expects_the_strongest_single_agent",),
             ("tests/test_screen.py",)),
    Mutation("ci_summary_arithmetic", "CI summary: arithmetic instead of geometric mean",
             "src/her2sim/screen/synergy.py",
             "summary = float(np.exp(np.mean(np.log(cells[good])))) if good.any() else math.nan",
             "summary = float(np.mean(cells[good])) if good.any() else math.nan",
             ("tests/test_synergy.py::test_ci_summary_is_the_geometric_mean_so_ci_2_and_one_half_cancel",),
             ("tests/test_synergy.py", "tests/test_screen.py")),
    Mutation("ci_cells_product", "CI per cell: product instead of sum of the dose fractions",
             "src/her2sim/screen/synergy.py",
             "ci = a[:, None] / fit_a.dose_for(e) + b[None, :] / fit_b.dose_for(e)",
             "ci = a[:, None] / fit_a.dose_for(e) * b[None, :] / fit_b.dose_for(e)",
             ("tests/test_synergy.py::test_combination_index_is_one_for_sham_combination",),
             ("tests/test_synergy.py",)),
    Mutation("hill_local_no_emax", "hill_local without the division by Emax",
             "src/her2sim/screen/screen.py",
             'out["hill_local"][i, j] = -4.0 * slope / out["emax"][i, j]',
             'out["hill_local"][i, j] = -4.0 * slope',
             ("tests/test_screen.py::test_hill_local_is_the_hill_slope_of_a_partial_effect_curve",),
             ("tests/test_screen.py",)),
    Mutation("hill_local_no_four", "hill_local = -slope / Emax (the factor 4 lost)",
             "src/her2sim/screen/screen.py",
             'out["hill_local"][i, j] = -4.0 * slope / out["emax"][i, j]',
             'out["hill_local"][i, j] = -slope / out["emax"][i, j]',
             ("tests/test_screen.py::test_hill_local_is_the_hill_slope_of_a_partial_effect_curve",),
             ("tests/test_screen.py",)),
    Mutation("erk_sos_positive", "ERK -| SOS made a positive feedback",
             "models/network/mapk.toml",
             'expr = "inhibit(ERK_p, K_ERK_SOS) * (1 - f_SOS_fb * SOS_p / SOS_total)"',
             'expr = "(1 + ERK_p / K_ERK_SOS) * (1 - f_SOS_fb * SOS_p / SOS_total)"',
             ("tests/test_network_signalling.py::test_signed_edges_of_the_network",
              "tests/test_network_signalling.py::test_weakening_a_negative_feedback_raises_its_target"),
             ("tests/test_network_signalling.py", "tests/test_network_biology.py", "tests/test_demos.py")),
    Mutation("erk_sos_positive_inhibit", "ERK -| SOS made positive inside the inhibit() call (2 - inhibit)",
             "models/network/mapk.toml",
             'expr = "inhibit(ERK_p, K_ERK_SOS) * (1 - f_SOS_fb * SOS_p / SOS_total)"',
             'expr = "(2 - inhibit(ERK_p, K_ERK_SOS)) * (1 - f_SOS_fb * SOS_p / SOS_total)"',
             ("tests/test_network_signalling.py::test_weakening_a_negative_feedback_raises_its_target",),
             ("tests/test_network_signalling.py", "tests/test_network_biology.py", "tests/test_demos.py")),
    Mutation("erk_receptor_fb_positive", "ERK -| HER2-dimer phosphorylation made positive (2 - inhibit)",
             "models/network/receptors.toml",
             'expr = "inhibit(ERK_p, K_ERK_receptor_fb)"',
             'expr = "2 - inhibit(ERK_p, K_ERK_receptor_fb)"',
             ("tests/test_network_signalling.py::test_weakening_a_negative_feedback_raises_its_target",),
             ("tests/test_network_signalling.py", "tests/test_network_biology.py", "tests/test_demos.py")),
    Mutation("erk_mtorc1_removed", "ERK -> mTORC1 removed (rate term and modifier)",
             "models/network/pi3k_akt_mtor.toml",
             'modifiers = ["AKT_p", "ERK_p"]\n'
             'rate = "k_mTOR_act * (mTOR_basal + AKT_activity + w_ERK_mTOR * ERK_p / ERK_total) * (mTORC1_total - mTORC1_a)"',
             'modifiers = ["AKT_p"]\n'
             'rate = "k_mTOR_act * (mTOR_basal + AKT_activity) * (mTORC1_total - mTORC1_a)"',
             ("tests/test_network_signalling.py::test_signed_edges_of_the_network",),
             ("tests/test_network_signalling.py", "tests/test_network_biology.py", "tests/test_demos.py")),
    Mutation("rsk_s6_removed", "RSK -> S6 removed (rate term and modifier)",
             "models/network/pi3k_akt_mtor.toml",
             'modifiers = ["S6K_p", "ERK_p"]\nrate = "k_S6_p * (S6K_p + w_RSK_S6 * ERK_p) * (S6_total - S6_p)"',
             'modifiers = ["S6K_p"]\nrate = "k_S6_p * S6K_p * (S6_total - S6_p)"',
             ("tests/test_network_signalling.py::test_signed_edges_of_the_network",),
             ("tests/test_network_signalling.py", "tests/test_network_biology.py", "tests/test_demos.py")),
    Mutation("apoptosis_signal_inverted", "apoptosis rises with the survival signal (signal term inverted)",
             "models/network/cell_cycle.toml",
             "k_apo_signal * (1 - mm(survival_signal, K_survival))",
             "k_apo_signal * mm(survival_signal, K_survival)",
             ("tests/test_network_signalling.py::test_apoptosis_rises_when_survival_signalling_is_lost",),
             ("tests/test_network_signalling.py", "tests/test_network_biology.py", "tests/test_demos.py")),
    Mutation("apoptosis_shock_inverted", "oncogenic-shock apoptosis responds to a gain, not a loss, of survival signal",
             "models/network/cell_cycle.toml",
             'expr = "max(0, 1 - survival_signal * survival_unit / survival_adapted)"',
             'expr = "max(0, survival_signal * survival_unit / survival_adapted - 1)"',
             ("tests/test_network_signalling.py::test_apoptosis_rises_when_survival_signalling_is_lost",),
             ("tests/test_network_signalling.py", "tests/test_network_biology.py", "tests/test_demos.py")),
    Mutation("dropout_lost", "trial drop-out censoring lost (everyone followed to the end)",
             "src/her2sim/trial/trial.py",
             "cens = np.minimum(assess_h[-1], last_before_drop)",
             "cens = np.full(n, assess_h[-1])",
             ("tests/test_trial_run.py::test_drop_outs_are_censored_at_their_last_scan",),
             ("tests/test_trial_run.py", "tests/test_trial_brain.py")),
]
BY_NAME = {m.name: m for m in MUTATIONS}


def run(m: Mutation, whole_files: bool, extra: list[str] = ()) -> tuple[bool, str, float]:
    """Apply ``m``, run its tests, restore. Returns (caught, last line of pytest's output, seconds)."""
    path = ROOT / m.path
    original = path.read_text()
    if original.count(m.old) != 1:
        raise SystemExit(f"{m.name}: the text to replace occurs {original.count(m.old)} times in {m.path}")
    targets = list(m.files or sorted({t.split('::')[0] for t in m.tests})) if whole_files else list(m.tests)
    clock = time.perf_counter()
    try:
        path.write_text(original.replace(m.old, m.new))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *extra, *targets],
                              cwd=ROOT, capture_output=True, text=True)
    finally:
        path.write_text(original)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    failed = [ln for ln in lines if ln.startswith("FAILED")]
    return proc.returncode != 0, (failed[0] if failed else lines[-1] if lines else proc.stderr[-200:]), \
        time.perf_counter() - clock


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    whole = "--files" in argv
    names = [a for a in argv if not a.startswith("--")]
    if not names:
        for m in MUTATIONS:
            print(f"{m.name:28s} {m.what}")
        return 0
    chosen = MUTATIONS if names == ["all"] else [BY_NAME[n] for n in names]
    missed = 0
    for m in chosen:
        caught, line, seconds = run(m, whole, extra)
        missed += not caught
        print(f"{m.name:28s} {'caught' if caught else 'NOT CAUGHT':10s} {seconds:6.1f} s  {line}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
