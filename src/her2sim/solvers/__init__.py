"""The integration stage: a compiled Network + conditions -> trajectories with a status.

- :mod:`.solve`: the scipy path (``simulate``, ``steady_state``);
- :mod:`.result`: :class:`~her2sim.solvers.result.Result` and its status;
- :mod:`.batch`: the NumPy batch Rosenbrock integrator (``simulate_batch``);
- :mod:`.batch_xp`, :mod:`.backend`, :mod:`.fused`, :mod:`.codegen_c`: array-API, GPU and
  compiled-kernel back ends of the batch path;
- :mod:`.sparse_lu`, :mod:`.tableaus`: its linear algebra and Rosenbrock tableaus;
- :mod:`.certify`: the accuracy certificate (a batch run checked against a tighter reference).
"""
