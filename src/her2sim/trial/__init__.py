"""Virtual clinical trials: from the cell model to patients (issue 6).

Pipeline: regimens (models/regimens) + PK (models/pk) -> free tumour / brain concentrations per
patient -> exposure-response tables from the signalling network (batch path) -> two-clone lesions
(body and brain) -> RECIST 1.1 -> PFS, ORR/DCR/CBR, Kaplan-Meier, Cox HR, log-rank, subgroups.
Patient-level parameters are calibrated only on the calibration trials (models/calibration.md).

>>> from her2sim.trial import run_trial
>>> result = run_trial("emilia_like", patients=200, seed=1)  # doctest: +SKIP
>>> print(result.report())  # doctest: +SKIP
"""

from .calibrate import CALIBRATION_TRIALS, CalibrationResult, calibrate
from .exposure import Background, ExposureTable, compute_table
from .pk import PKModel, PKStepper, load_pk, superpose
from .population import Cohort, PopulationSpec, load_population, sample_population
from .recist import assess, classify
from .regimen import Regimen, list_regimens, load_regimen
from .survival import CoxResult, KaplanMeier, cox_single, kaplan_meier, logrank, median_survival
from .scaleout import run_trial, run_trial_task
from .trial import TrialResult, TrialSpec, evaluate, load_trial, prepare_trial
from .tumour import TumourParameters, load_tumour

__all__ = [
    "CALIBRATION_TRIALS",
    "Background",
    "CalibrationResult",
    "Cohort",
    "CoxResult",
    "ExposureTable",
    "KaplanMeier",
    "PKModel",
    "PKStepper",
    "PopulationSpec",
    "Regimen",
    "TrialResult",
    "TrialSpec",
    "TumourParameters",
    "assess",
    "calibrate",
    "classify",
    "compute_table",
    "cox_single",
    "evaluate",
    "kaplan_meier",
    "list_regimens",
    "load_pk",
    "load_population",
    "load_regimen",
    "load_trial",
    "load_tumour",
    "logrank",
    "median_survival",
    "prepare_trial",
    "run_trial",
    "run_trial_task",
    "sample_population",
    "superpose",
]
