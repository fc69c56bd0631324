"""Parameter estimation: PEtab v1 problems, the batched objective, multi-start fits, profiles.

>>> from her2sim.fit import read_problem, Objective, fit  # doctest: +SKIP
>>> problem = read_problem("Boehm_JProteomeRes2014/Boehm_JProteomeRes2014.yaml")  # doctest: +SKIP
>>> Objective(problem).evaluate(problem.nominal()).llh  # doctest: +SKIP
>>> result = fit(problem, starts=20, seed=0)  # doctest: +SKIP

Modules: :mod:`.problem` (reading and validating PEtab), :mod:`.noise` (noise models, priors),
:mod:`.objective` (nllh, residuals, batched finite differences), :mod:`.optimize` (multi-start,
FitResult), :mod:`.profiles`, :mod:`.plots`, :mod:`.cli` (``her2sim fit``).
"""

from .objective import Evaluation, Objective
from .optimize import FitResult, StartResult, fit, latin_hypercube, local_fit, parameter_table
from .problem import PetabError, PetabProblem, read_problem
from .profiles import Profile, profile, profiles

__all__ = ["Evaluation", "Objective", "FitResult", "StartResult", "fit", "latin_hypercube", "local_fit",
           "parameter_table", "PetabError", "PetabProblem", "read_problem", "Profile", "profile", "profiles"]
