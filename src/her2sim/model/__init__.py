"""The model stage: a TOML model file -> a checked ModelSpec -> a compiled Network.

- :mod:`.spec`: the model as plain data (species, parameters with units and sources, reactions);
- :mod:`.load`: reading, merging and checking model files (bundled and user);
- :mod:`.expr`: the whitelisting parser of rate expressions (no eval);
- :mod:`.units`: pint quantities and the internal units (nM, h);
- :mod:`.codegen`: straight-line NumPy code for the right-hand side and the Jacobian;
- :mod:`.network`: :class:`~her2sim.model.network.Network`, the compiled, batched model;
- :mod:`.report`: the parameter table in Markdown.
"""
